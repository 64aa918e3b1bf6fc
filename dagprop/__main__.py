"""``python -m dagprop`` runs the ``dagprop`` command."""

from dagprop.cli import main

raise SystemExit(main())
