"""smgitops custom checkov checks (loaded with ``--external-checks-dir policies``).

checkov imports every ``.py`` file of a directory that holds an ``__init__.py``; this file only marks the
directory as loadable.
"""
