"""The stores document, as the functions see it: parsed by the contract's
one parser (:mod:`dynafed_contract.stores`), re-exported for runtime code."""
from __future__ import annotations

from dynafed_contract.stores import ADDRESSING_STYLES, Store, StoreConfigError, parse_stores

__all__ = ["ADDRESSING_STYLES", "Store", "StoreConfigError", "parse_stores"]
