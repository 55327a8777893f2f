"""`python -m paddlefunnel ...`: the same command line as the `paddlefunnel` script (for launchers such as
`python -m paddle.distributed.launch -m paddlefunnel`, and environments without the script on PATH)."""

import sys

from paddlefunnel.cli import main

sys.exit(main())
