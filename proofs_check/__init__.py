"""Checks of the claims of the IBVI paper (and our extensions), each against a stated tolerance.

Run ``python -m proofs_check`` for the table of claims; ``python -m proofs_check --help`` for
the options.
"""
from .registry import (Claim, ClaimResult, Context, Measurement, Outcome, Table, all_claims,
                       claim, run_claim, select)

__all__ = ["Claim", "ClaimResult", "Context", "Measurement", "Outcome", "Table", "all_claims",
           "claim", "run_claim", "select"]
