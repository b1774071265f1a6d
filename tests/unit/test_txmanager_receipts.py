"""Which version's receipt stands for a call (portal.chain.txmanager._find_receipt)."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st
from web3.exceptions import TransactionNotFound

from portal.chain import txmanager

# A version not mined, mined and reverted, or mined and succeeded.
STATES = st.sampled_from([None, 0, 1])


class _Node:
    def __init__(self, receipts: dict[str, dict]):
        self.eth = SimpleNamespace(get_transaction_receipt=self._receipt)
        self._receipts = receipts

    def _receipt(self, tx_hash):
        if tx_hash not in self._receipts:
            raise TransactionNotFound(tx_hash)
        return self._receipts[tx_hash]


@given(states=st.lists(STATES, min_size=1, max_size=5))
def test_a_version_that_succeeded_stands_for_the_call(states):
    versions = [SimpleNamespace(tx_hash=f"0x{i:064x}") for i in range(len(states))]
    receipts = {
        v.tx_hash: {"status": state, "n": i}
        for i, (v, state) in enumerate(zip(versions, states, strict=True))
        if state is not None
    }
    version, receipt = txmanager._find_receipt(
        _Node(receipts), SimpleNamespace(broadcasts=versions)
    )
    mined = [i for i, state in enumerate(states) if state is not None]
    succeeded = [i for i in mined if states[i] == 1]
    if succeeded:  # a call done once is done, whatever a later version (another nonce) did
        assert receipt["status"] == 1 and receipt["n"] == succeeded[-1]
    elif mined:
        assert receipt["status"] == 0 and receipt["n"] == mined[-1]
    else:
        assert (version, receipt) == (None, None)
    if receipt is not None:
        assert version is versions[receipt["n"]]
