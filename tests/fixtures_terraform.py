"""Terraform / local-mode fixtures (filled in by the Terraform work)."""
