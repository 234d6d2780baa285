# pragma version ~=0.4.3
"""
@title OVPP token
@notice ERC-20 (with EIP-2612 permit) of the OpenVPP network. The deployer owns it and
        may grant the minter role; the reward distributor is a minter and mints each
        settlement epoch's total when the epoch is posted.
@dev snekmate's audited `erc20` and `ownable` modules, unchanged.
"""

from ethereum.ercs import IERC20
implements: IERC20

from snekmate.auth import ownable as ow
initializes: ow

from snekmate.tokens import erc20
initializes: erc20[ownable := ow]

exports: erc20.__interface__


@deploy
@payable
def __init__():
    ow.__init__()
    erc20.__init__("OpenVPP Token", "OVPP", 18, "OpenVPP Token", "1")
