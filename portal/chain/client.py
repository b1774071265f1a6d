"""The web3 client of this process: a JSON-RPC node by ``WEB3_PROVIDER_URI`` or the embedded EVM."""

from __future__ import annotations

from flask import current_app
from web3 import Web3

from portal.chain import embedded


class ChainUnavailable(RuntimeError):
    """The chain cannot be reached or is not the one the database knows."""


def is_embedded(app=None) -> bool:
    app = app or current_app
    return not app.config.get("WEB3_PROVIDER_URI")


def web3(app=None) -> Web3:
    app = app or current_app
    found = app.extensions.get("portal_web3")
    if found is not None:
        return found
    uri = app.config.get("WEB3_PROVIDER_URI")
    if uri:
        w3 = Web3(Web3.HTTPProvider(uri, request_kwargs={"timeout": 30}))
    else:
        if not app.config.get("CHAIN_EMBEDDED_ALLOWED", True):
            raise ChainUnavailable(
                "This worker runs in its own process, where the embedded chain of `flask serve` "
                "cannot be reached. Set WEB3_PROVIDER_URI to a JSON-RPC node (see README, "
                "'Production')."
            )
        instance = None if app.config.get("CHAIN_EPHEMERAL") else app.config["INSTANCE_DIR"]
        w3 = Web3(embedded.get(instance).provider)
    app.extensions["portal_web3"] = w3
    return w3


def faucet_key(app=None) -> str | None:
    """Where gas money for the portal's signers comes from, outside production."""
    app = app or current_app
    if is_embedded(app):
        instance = None if app.config.get("CHAIN_EPHEMERAL") else app.config["INSTANCE_DIR"]
        return embedded.get(instance).faucet_key
    return app.config.get("CHAIN_FAUCET_KEY")
