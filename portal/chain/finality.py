"""How deep a transaction must be before its effects are final, per chain.

Depth counts the block that holds the transaction: 1 means "included". Dev chains (anvil,
hardhat, the embedded EVM, which mines one block per transaction and nothing else) default to 1,
so a transaction there is final when it is mined; public chains default to a depth at which a
reorg is not expected in practice. ``CHAIN_CONFIRMATIONS`` overrides the default for any chain.
"""

from __future__ import annotations

from flask import current_app

EMBEDDED_CHAIN_ID = 131277322940537  # eth-tester's default chain id
DEFAULTS = {
    1: 12,  # Ethereum mainnet
    11155111: 6,  # Sepolia
    17000: 6,  # Holesky
    100: 20,  # Gnosis
    10200: 10,  # Gnosis Chiado
    137: 128,  # Polygon PoS
    80002: 32,  # Polygon Amoy
    10: 12,  # OP mainnet
    8453: 12,  # Base
    42161: 12,  # Arbitrum One
    31337: 1,  # anvil, hardhat
    1337: 1,  # geth --dev, ganache
    EMBEDDED_CHAIN_ID: 1,
}
UNKNOWN_CHAIN = 12


def confirmations(chain_id: int) -> int:
    configured = current_app.config.get("CHAIN_CONFIRMATIONS")
    if configured not in (None, ""):
        return max(int(configured), 1)
    return DEFAULTS.get(int(chain_id), UNKNOWN_CHAIN)


def depth(latest_block: int, included_in: int) -> int:
    return latest_block - included_in + 1


def max_fee_ceiling() -> int:
    """The highest maxFeePerGas a fee bump may reach, in wei."""
    return int(current_app.config["CHAIN_MAX_FEE_PER_GAS_GWEI"]) * 10**9
