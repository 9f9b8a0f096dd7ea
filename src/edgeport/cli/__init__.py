"""The command line. Each command lives in its own module and imports heavy libraries inside the
command function, so ``edgeport --help`` and ``edgeport samples`` stay fast and torch/TF-free."""
