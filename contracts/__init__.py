"""Device identities and rewards on an EVM chain: Vyper sources and their web3.py clients."""
