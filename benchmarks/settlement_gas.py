"""Settlement gas: posting an epoch, claiming a reward, and paying by plain transfers.

For each size, on a fresh deployment (the embedded EVM, or ``--rpc-url`` for a node
such as anvil), one epoch of ``devices`` rewards, each to a different new holder:

- ``epoch_post_gas``: posting the root and total (minting the total);
- ``claim_gas``: a typical claim (a new holder; the claim bitmap word already written),
  ``claim_gas_first_in_word`` (the first claim of each 256 writes a new bitmap word),
  ``claim_gas_mean`` over a bitmap word, and ``claim_gas_returning_holder`` (an owner
  who already holds OVPP, in the next epoch);
- ``per_device_transfer_gas_total``: the same payout as one ERC-20 transfer per device
  from a funded account, summed (measured up to ``--transfer-limit`` devices, then
  extrapolated from the mean and flagged ``transfer_extrapolated``).

Usage::

    python benchmarks/settlement_gas.py --devices 10 1000 10000 [--json] [--rpc-url URL]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from eth_utils import keccak, to_checksum_address

from contracts.chain import Chain, deploy_all, embedded_chain, rpc_chain, send
from contracts.merkle import Reward

TOKEN = 10**18


def owner(n: int) -> str:
    return to_checksum_address(f"0x{n + 0x1000:040x}")


def measure(devices: int, rpc_url: str | None, transfer_limit: int) -> dict[str, Any]:
    started = time.perf_counter()
    w3 = rpc_chain(rpc_url) if rpc_url else embedded_chain()
    admin = w3.eth.accounts[0]
    chain = Chain(w3, deploy_all(w3, admin))
    epoch = [Reward(1, i, keccak(i.to_bytes(32, "big")), owner(i), TOKEN) for i in range(devices)]
    tree, posted = chain.post_epoch(admin, 1, epoch)

    def claim(reward: Reward, proof: list[bytes]) -> int:
        return int(chain.claim(admin, reward, proof)["gasUsed"])

    first = claim(epoch[0], tree.proof(0))
    typical = [claim(epoch[i], tree.proof(i)) for i in range(1, min(devices, 21))]
    # The next epoch pays the same owners again: they now hold OVPP.
    again = [Reward(2, i, r.device_id, r.owner, TOKEN) for i, r in enumerate(epoch)]
    tree2, _ = chain.post_epoch(admin, 2, again)
    claim(again[0], tree2.proof(0))
    returning = [claim(again[i], tree2.proof(i)) for i in range(1, min(devices, 11))]

    # Plain transfers from a funded account (the admin is a minter).
    measured = min(devices, transfer_limit)
    send(w3, "mint", chain.token.functions.mint(admin, measured * TOKEN), admin)
    transfer_gas = [
        int(
            send(w3, "transfer", chain.token.functions.transfer(owner(devices + i), TOKEN), admin)[
                "gasUsed"
            ]
        )
        for i in range(measured)
    ]
    total = sum(transfer_gas) * devices / measured
    median = statistics.median(typical) if typical else first
    return {
        "devices": devices,
        "proof_nodes": len(tree.proof(0)),
        "epoch_post_gas": int(posted["gasUsed"]),
        "claim_gas": int(median),
        "claim_gas_first_in_word": first,
        "claim_gas_mean": round((first + 255 * median) / 256),
        "claim_gas_returning_holder": int(statistics.median(returning) if returning else 0),
        "claims_total_gas": round(
            first * -(-devices // 256) + median * (devices - -(-devices // 256))
        ),
        "per_device_transfer_gas_total": round(total),
        "transfer_extrapolated": measured < devices,
        "chain": rpc_url or "embedded",
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--rpc-url", default=None, help="EVM JSON-RPC URL (default: embedded)")
    parser.add_argument("--transfer-limit", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="JSON lines only")
    args = parser.parse_args()
    for devices in args.devices:
        line = measure(devices, args.rpc_url, args.transfer_limit)
        if args.json:
            print(json.dumps(line), flush=True)
        else:
            print(
                f"{devices:>6} devices: post {line['epoch_post_gas']:,} gas, claim "
                f"{line['claim_gas']:,} (first in word {line['claim_gas_first_in_word']:,}, "
                f"returning {line['claim_gas_returning_holder']:,}), transfers "
                f"{line['per_device_transfer_gas_total']:,} in all",
                flush=True,
            )


if __name__ == "__main__":
    main()
