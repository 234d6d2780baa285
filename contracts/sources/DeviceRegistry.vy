# pragma version ~=0.4.3
"""
@title Device registry
@notice On-chain identity of every OpenVPP device: its id (keccak-256 of the normalised
        make|model|serial, the same id the registry service derives), owner, a hash of
        its attributes, whether it is active, and its reputation (delivery ratio in
        basis points, updated by the settler each epoch).
@dev Roles (snekmate `access_control`): INTEGRATOR_ROLE registers and retires devices,
     SETTLER_ROLE updates reputations, DEFAULT_ADMIN_ROLE manages both. An owner
     transfers its own device.
"""

from ethereum.ercs import IERC165
implements: IERC165

from snekmate.auth.interfaces import IAccessControl
implements: IAccessControl

from snekmate.auth import access_control
initializes: access_control

exports: access_control.__interface__

from ethereum.ercs import IERC20

INTEGRATOR_ROLE: public(constant(bytes32)) = keccak256("INTEGRATOR_ROLE")
SETTLER_ROLE: public(constant(bytes32)) = keccak256("SETTLER_ROLE")
MAX_BATCH: constant(uint256) = 256

struct Device:
    owner: address
    attributes_hash: bytes32
    active: bool
    reputation_bps: uint16
    reputation_epoch: uint64

event DeviceRegistered:
    device_id: indexed(bytes32)
    owner: indexed(address)
    attributes_hash: bytes32

event DeviceRetired:
    device_id: indexed(bytes32)

event DeviceOwnerTransferred:
    device_id: indexed(bytes32)
    previous_owner: indexed(address)
    new_owner: indexed(address)

event DeviceAttributesUpdated:
    device_id: indexed(bytes32)
    attributes_hash: bytes32

event ReputationUpdated:
    device_id: indexed(bytes32)
    epoch: indexed(uint64)
    reputation_bps: uint16

event ConnectionFeeCharged:
    device_id: indexed(bytes32)
    program_id: indexed(bytes32)
    payer: indexed(address)
    amount: uint256

devices: public(HashMap[bytes32, Device])
device_count: public(uint256)
token: public(immutable(IERC20))
fee_recipient: public(address)


@deploy
@payable
def __init__(token_: address, fee_recipient_: address):
    access_control.__init__()
    token = IERC20(token_)
    self.fee_recipient = fee_recipient_


@external
def charge_connection_fee(device_id: bytes32, program_id: bytes32, payer: address, amount: uint256):
    """
    @notice The routing fee of enrolling a device in a program, paid in OVPP from the
            allowance ``payer`` (the customer or the program administrator) gave this
            contract. Reverts, and so forms no enrolment, when the allowance or the
            balance is short.
    """
    access_control._check_role(INTEGRATOR_ROLE, msg.sender)
    assert self.devices[device_id].active, "registry: device not active"
    assert extcall token.transferFrom(payer, self.fee_recipient, amount), "registry: fee transfer failed"
    log ConnectionFeeCharged(device_id=device_id, program_id=program_id, payer=payer, amount=amount)


@external
def set_fee_recipient(recipient: address):
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert recipient != empty(address), "registry: fee recipient is the zero address"
    self.fee_recipient = recipient


@external
def register(device_id: bytes32, owner: address, attributes_hash: bytes32):
    access_control._check_role(INTEGRATOR_ROLE, msg.sender)
    assert device_id != empty(bytes32), "registry: empty device id"
    assert owner != empty(address), "registry: owner is the zero address"
    assert self.devices[device_id].owner == empty(address), "registry: device already registered"
    self.devices[device_id] = Device(
        owner=owner, attributes_hash=attributes_hash, active=True, reputation_bps=10000, reputation_epoch=0
    )
    self.device_count += 1
    log DeviceRegistered(device_id=device_id, owner=owner, attributes_hash=attributes_hash)


@external
def update_attributes(device_id: bytes32, attributes_hash: bytes32):
    access_control._check_role(INTEGRATOR_ROLE, msg.sender)
    assert self.devices[device_id].active, "registry: device not active"
    self.devices[device_id].attributes_hash = attributes_hash
    log DeviceAttributesUpdated(device_id=device_id, attributes_hash=attributes_hash)


@external
def retire(device_id: bytes32):
    access_control._check_role(INTEGRATOR_ROLE, msg.sender)
    assert self.devices[device_id].active, "registry: device not active"
    self.devices[device_id].active = False
    log DeviceRetired(device_id=device_id)


@external
def transfer_device(device_id: bytes32, new_owner: address):
    device: Device = self.devices[device_id]
    assert device.owner == msg.sender, "registry: caller is not the device owner"
    assert new_owner != empty(address), "registry: new owner is the zero address"
    self.devices[device_id].owner = new_owner
    log DeviceOwnerTransferred(device_id=device_id, previous_owner=msg.sender, new_owner=new_owner)


@external
def set_reputations(
    device_ids: DynArray[bytes32, MAX_BATCH], reputations_bps: DynArray[uint16, MAX_BATCH], epoch: uint64
):
    access_control._check_role(SETTLER_ROLE, msg.sender)
    assert len(device_ids) == len(reputations_bps), "registry: lengths differ"
    for i: uint256 in range(len(device_ids), bound=MAX_BATCH):
        assert reputations_bps[i] <= 10000, "registry: reputation above 10000 bps"
        assert self.devices[device_ids[i]].owner != empty(address), "registry: unknown device"
        assert epoch >= self.devices[device_ids[i]].reputation_epoch, "registry: older epoch"
        self.devices[device_ids[i]].reputation_bps = reputations_bps[i]
        self.devices[device_ids[i]].reputation_epoch = epoch
        log ReputationUpdated(device_id=device_ids[i], epoch=epoch, reputation_bps=reputations_bps[i])


@external
@view
def owner_of(device_id: bytes32) -> address:
    return self.devices[device_id].owner


@external
@view
def is_active(device_id: bytes32) -> bool:
    return self.devices[device_id].active
