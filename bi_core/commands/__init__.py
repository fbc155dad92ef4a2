"""CLI command groups, discovered by :func:`bi_core.cli.build_parser`.

Each module defines ``ORDER`` (position in ``--help``) and ``add_parsers(subparsers)``;
handlers take the parsed ``argparse.Namespace`` and return an exit code.
"""
