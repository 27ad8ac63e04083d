"""Draws bench/results/*.json as a PNG: requests per second and p99 latency per workload,
idforce beside node-oidc-provider where both run the workload."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"idforce": "#1f6feb", "oidc-provider": "#8c8c8c"}


def main(src, dst):
    with open(src) as f:
        data = json.load(f)
    rows = [r for r in data["rows"] if r["offered_rate"] is None]
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    servers = list(dict.fromkeys(r["server"] for r in rows))
    fig, (rate_ax, p99_ax) = plt.subplots(
        1, 2, figsize=(13, 0.55 * len(workloads) + 2), sharey=True
    )
    height = 0.8 / len(servers)
    for i, server in enumerate(servers):
        ys, rates, p99s = [], [], []
        for y, w in enumerate(workloads):
            row = next((r for r in rows if r["workload"] == w and r["server"] == server), None)
            if row:
                ys.append(y + (i - (len(servers) - 1) / 2) * height)
                rates.append(row["requests_per_second"] or 0)
                p99s.append(row["p99_ms"] or 0)
        rate_ax.barh(ys, rates, height, label=server, color=COLOURS.get(server))
        p99_ax.barh(ys, p99s, height, label=server, color=COLOURS.get(server))
        for y, v in zip(ys, rates):
            rate_ax.text(v, y, f" {v:,.0f}", va="center", fontsize=8)
    rate_ax.set_yticks(range(len(workloads)), workloads)
    rate_ax.invert_yaxis()
    rate_ax.set_xscale("log")
    rate_ax.set_xlabel("requests per second (log scale; higher is better)")
    p99_ax.set_xlabel("p99 latency at the maximum rate, ms (lower is better)")
    p99_ax.legend(loc="lower right")
    machine = data["facts"].get("machine", {})
    fig.suptitle(
        f"idforce vs node-oidc-provider — {machine.get('cpu', '')}, {machine.get('cores', '?')} cores, "
        f"{data['facts'].get('connections')} connections, one load-generator thread"
    )
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
