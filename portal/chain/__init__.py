"""Everything that talks to the EVM chain: the web3 client, contracts, signers and transactions.

People's data never reaches the chain: beneficiaries appear there only as pseudonymous addresses
derived from their row id with a key the chain never sees (``addresses.py``).
"""
