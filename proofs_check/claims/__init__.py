"""Claim modules: each module registers its claims with :func:`proofs_check.registry.claim`.

Every module in this package whose name does not start with ``_`` is imported by
:func:`proofs_check.registry.all_claims`.
"""
