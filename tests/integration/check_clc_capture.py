#!/usr/bin/env python3
"""Compares what tshark decodes in a capture of `shunt clc demo` with what the demo reports."""
import json
import subprocess
import sys

FIELDS = [
    "tcp.stream", "smc.clc_msg", "smc.length",
    "smc.proposal.ism.gid", "smc.proposal.smc.chid", "smc.proposal.eid",
    "smc.accept.sender.server.ism.gid", "smc.accept.dmb.token", "smc.accept.smc.chid",
    "smc.accept.eid", "smc.accept.first.contact", "smc.accept.smc.version.relnum",
    "smc.confirm.sender.client.ism.gid", "smc.confirm.dmb.token", "smc.confirm.smc.chid",
    "smc.peer.diag.info",
]


def tshark(*args):
    return subprocess.run(["tshark", *args], check=True, capture_output=True, text=True).stdout


def main(pcap, demo_json):
    demo = json.load(open(demo_json))
    cmd = ["-r", pcap, "-Y", "smc", "-T", "fields", "-E", "separator=|", "-E", "occurrence=a",
           "-E", "aggregator=,"]
    for f in FIELDS:
        cmd += ["-e", f]
    rows = [dict(zip(FIELDS, line.split("|"))) for line in tshark(*cmd).splitlines() if line]
    failures = []

    def check(what, got, want):
        status = "ok  " if got == want else "FAIL"
        print(f"{status} {what}: tshark {got!r}, expected {want!r}")
        if got != want:
            failures.append(what)

    check("CLC messages in order", [r["smc.clc_msg"] for r in rows], ["1", "2", "3", "1", "4"])
    if len(rows) != 5:
        print("FAIL: cannot check fields without exactly 5 CLC messages")
        return 1
    prop, acc, conf, prop2, decl = rows
    gid, gid_ext = demo["gid"], demo["gid_ext"]
    check("Proposal length", prop["smc.length"], str(demo["proposal_length"]))
    # The native v1 slot is empty; the v2 GID list holds the Emulated-ISM pair.
    check("Proposal GIDs", prop["smc.proposal.ism.gid"].split(","), ["0x0000000000000000", gid, gid_ext])
    check("Proposal CHIDs", prop["smc.proposal.smc.chid"].split(","), ["0x0000", "0xffff", "0xffff"])
    check("Proposal UEID", prop["smc.proposal.eid"].rstrip(), demo["eid"])
    check("Accept length", acc["smc.length"], str(demo["accept_length"]))
    check("Accept GID", acc["smc.accept.sender.server.ism.gid"], gid)
    check("Accept DMB token", acc["smc.accept.dmb.token"], demo["server_dmb_token"])
    check("Accept CHID", acc["smc.accept.smc.chid"], "0xffff")
    check("Accept EID", acc["smc.accept.eid"].rstrip(), demo["eid"])
    check("Accept first contact", acc["smc.accept.first.contact"], "1")
    check("Accept release", acc["smc.accept.smc.version.relnum"], "1")
    check("Confirm GID", conf["smc.confirm.sender.client.ism.gid"], gid)
    check("Confirm DMB token", conf["smc.confirm.dmb.token"], demo["client_dmb_token"])
    check("Confirm CHID", conf["smc.confirm.smc.chid"], "0xffff")
    check("second connection is another TCP stream", prop2["tcp.stream"] != prop["tcp.stream"], True)
    check("Decline diagnosis", decl["smc.peer.diag.info"].split(",")[0], demo["decline_code"])
    check("fallback bytes after Decline", demo["fallback_echo"], "hello over TCP")

    malformed = tshark("-r", pcap, "-Y", "_ws.malformed or _ws.expert.severity >= error").strip()
    check("malformed or error-level packets", malformed, "")
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("tshark decodes every CLC message as sent")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
