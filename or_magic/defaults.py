"""Every default value in one place: the client, the options, ``ChatMagics`` and the panel read them here.

Kept free of imports so every layer, the wire included, can use it.
"""

from __future__ import annotations

MODEL = "openrouter/auto"  # OpenRouter's router picks a model when none is named
THREAD = "default"  # the thread a cell continues when it names none
MAX_RETRIES = 2  # retries for 408/429/5xx and connection errors, before the first byte
MAX_STEPS = 5  # tool-call round trips in one turn
MAX_STEPS_LIMIT = 50
CONNECT_TIMEOUT = 10.0  # seconds
READ_TIMEOUT = 300.0  # seconds between bytes of an answer
UPDATE_RATE = 10.0  # display updates per second while streaming
MAX_STOP_SEQUENCES = 4
CONTEXT_CHARS = 4000  # how much of one variable --context describes

# accepted ranges, shared by the magic's options, ChatMagics' config and the panel's controls
TEMPERATURE_RANGE = (0.0, 2.0)
TOP_P_RANGE = (0.0, 1.0)
UPDATE_RATE_RANGE = (0.5, 60.0)
READ_TIMEOUT_RANGE = (0.1, 3600.0)
MAX_RETRIES_RANGE = (0, 10)
MAX_TOKENS_MIN = 1  # an answer of at least one token; None/unset means the model's default
MAX_TOKENS_SLIDER = 32768  # the panel slider's top when /models does not say the model's cap
BUDGET_MIN = 0.0  # USD; None means no budget
WEB_RESULTS_RANGE = (1, 20)  # --web-results: results per web search
COMPARE_MODELS = (2, 4)  # --compare: how many models side by side
PROMPT_CACHE = "auto"  # ChatMagics.prompt_cache: auto (marker where the model needs one), on, off
GENERATION_TRIES = 5  # GET /generation tries to learn an unfinished stream's real cost
GENERATION_DELAY = 0.5  # seconds before the first try; doubled after each 404

# the notebook as context (--cells, %chat fix): what is kept per executed cell and how much goes into a request
CELLS_KEPT = 300  # executed cells whose printed text and error are remembered (older ones: source and Out only)
PRINTED_KEPT = 8000  # characters of what one cell printed, kept as its first and last lines
SHOWN_KEPT = 4_000_000  # bytes of the running cell's other outputs kept to redraw them under an answer
CELL_CHARS = 6000  # one cell in the --cells block
CELLS_CHARS = 24000  # the whole --cells block
FIX_VARIABLE_CHARS = 600  # one variable described in a %chat fix request
FIX_VARIABLES = 6  # variables of the failing line described at most

# prompts over data (mapping.py)
MAP_CONCURRENCY = 8  # requests in flight at once
MAP_CONCURRENCY_RANGE = (1, 256)
MAP_POOL_SIZE = 1  # connections per pool of a map: one per worker (a shared pool's upkeep grows as its square)
MAP_MAX_RETRIES = 4  # re-sends of one row after a 429/503/529, each after the shared gate reopens
MAP_GATE_STATUSES = (429, 503, 529)  # answers that pause every worker, not just the row that got them
MAP_MAX_GATE_WAIT = 120.0  # seconds: a longer Retry-After fails the row instead of stalling the map
BATCH_POLL_INTERVAL = 0.5  # seconds before the first re-poll of a submitted batch
BATCH_POLL_BACKOFF = 1.5  # each later interval is this much longer ...
BATCH_MAX_POLL_INTERVAL = 15.0  # ... up to this cap
BATCH_LIST_LIMIT = 20  # batches `%chat batches` lists
MAP_PREVIEW_ROWS = 5  # rows of the result shown under the summary card
