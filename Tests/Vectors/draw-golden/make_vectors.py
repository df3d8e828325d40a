"""Golden vectors for the lottery draw, computed independently of the Swift
code with Python's hashlib and hmac (README, Lottery). Run it to remake
draw.json and results.csv; DrawTests checks the Swift draw makes the same
bytes, and `allot draw verify draw.json results.csv` accepts them."""
import hashlib
import hmac
import json

server_secret = bytes([7]) * 32
campaign = "golden"
draw_key = hmac.new(server_secret, b"allot draw entry v1\x00" + campaign.encode(), hashlib.sha256).digest()
citizens = [f"citizen-key-{n}" for n in range(1, 7)]
preferences = {
    "citizen-key-1": ["s0"], "citizen-key-2": ["s0", "site:hall"], "citizen-key-3": ["site:annex"],
    "citizen-key-4": ["s2", "s0"], "citizen-key-5": ["s1"], "citizen-key-6": ["s0"],
}
places = [("s0", "hall", 1), ("s1", "hall", 2), ("s2", "annex", 1)]
secret = bytes(range(32))
public_value_source = "drand quicknet round 1234"
public_value = "5a9d3c0f"

entry = {c: hmac.new(draw_key, c.encode(), hashlib.sha256).digest() for c in citizens}
def length_prefixed(tag, fields):
    data = tag + b"\x00"
    for field in fields:
        data += len(field).to_bytes(4, "big") + field
    return data


rule_fields = [campaign.encode(), public_value_source.encode()]
for slot, site, capacity in places:
    rule_fields += [slot.encode(), site.encode(), str(capacity).encode()]
rules = hashlib.sha256(length_prefixed(b"allot draw rules v1", rule_fields)).digest()
commitment = hashlib.sha256(b"allot draw commitment v1\x00" + rules + secret).digest()


def leaf(data):
    return hashlib.sha256(b"\x00" + data).digest()


def mth(leaves):
    """RFC 9162, 2.1.1, as written (recursive)."""
    if len(leaves) == 0:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


# A leaf: the entry id, then its preferences (UTF-8, space-separated).
leaves = [entry[c] + " ".join(preferences[c]).encode() for c in sorted(citizens, key=lambda c: entry[c])]
root = mth(leaves)
seed = hashlib.sha256(length_prefixed(b"allot draw seed v1", [rules, secret, root, public_value.encode()])).digest()

left = {slot: capacity for slot, _, capacity in places}
by_site = {}
for slot, site, _ in places:
    by_site.setdefault(site, []).append(slot)
rows = []
order = sorted(citizens, key=lambda c: (hmac.new(seed, entry[c], hashlib.sha256).digest(), entry[c]))
for rank, c in enumerate(order, 1):
    won = "-"
    for preference in preferences[c]:
        candidates = by_site.get(preference[5:], []) if preference.startswith("site:") else [preference]
        slot = next((s for s in candidates if left.get(s, 0) > 0), None)
        if slot:
            left[slot] -= 1
            won = slot
            break
    ticket = hmac.new(seed, entry[c], hashlib.sha256).digest()
    rows.append(f"{rank},{entry[c].hex()},{ticket.hex()},{' '.join(preferences[c])},{won}\r\n")

description = {
    "format": "allot-draw-v1", "campaign_id": campaign, "commitment": commitment.hex(), "secret": secret.hex(),
    "public_value_source": public_value_source, "public_value": public_value, "entry_count": len(citizens), "root": root.hex(), "seed": seed.hex(),
    "places": [{"slot_id": s, "site_id": site, "capacity": cap} for s, site, cap in places],
}
with open("draw.json", "w") as out:
    out.write(json.dumps(description, separators=(",", ":")))
with open("results.csv", "w", newline="") as out:
    out.write("rank,entry_id,ticket,preferences,outcome\r\n" + "".join(rows))
with open("citizens.json", "w") as out:
    json.dump({"server_secret": server_secret.hex(), "citizen_keys": citizens, "preferences": preferences}, out, indent=1)
