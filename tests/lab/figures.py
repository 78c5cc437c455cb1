"""Agreement figures the lab tests report; tests/lab/conftest.py prints them at the end of the run."""

FIGURES: list[str] = []
