"""The local AWS emulator: moto's server plus smgitops' explicit extensions (see extensions.py)."""
