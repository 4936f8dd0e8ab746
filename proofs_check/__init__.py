"""Checks of the claims of the IBVI paper (and our extensions), each against a stated tolerance.

``python -m proofs_check`` checks every claim; ``python -m proofs_check list`` lists them;
``python -m proofs_check --help`` shows the subcommands and their options.
"""
from .registry import (Claim, ClaimResult, ClaimSkipped, Context, Measurement, Outcome, Table,
                       all_claims, claim, run_claim, select)

__all__ = ["Claim", "ClaimResult", "ClaimSkipped", "Context", "Measurement", "Outcome", "Table",
           "all_claims", "claim", "run_claim", "select"]
