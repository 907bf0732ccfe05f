"""app.py's handler behind a gate: a worker that imports this while the file named by
FUNCD_TEST_NO_START exists ends at once, as a worker that fails to start. A test opens the gate
(removes the file) to let the next one start.
"""

import os

if os.path.exists(os.environ.get('FUNCD_TEST_NO_START', '')):
    os._exit(1)

from app import handler  # noqa: E402,F401  (after the gate on purpose)
