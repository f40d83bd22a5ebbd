# Generates the scenarios signin-burst-user, signin-spray-source and port-scan
# under scenarios/ (run from anywhere: python3 generate_signin_and_scan.py).
# The files are committed; rerun only to change the stories. All values are
# made up. `musubi demo` replays every scenario folder together, so these
# stories stay before the attack chain (2026-11-20 09:00Z) and use users,
# hosts and addresses of their own.
import datetime, hashlib, json, os, uuid

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
T0 = datetime.datetime(2026, 11, 20, 2, 0, 0, tzinfo=datetime.timezone.utc)
ACCT, REGION, NAT = "111122223333", "us-east-1", "198.51.100.7"

def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)
def iso(seconds):
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")
def uid(*parts):
    return str(uuid.UUID(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]))

def signin(seconds, user, ip, ok, tag=""):
    ident = {"type": "IAMUser", "principalId": "AIDA" + hashlib.sha1(user.encode()).hexdigest()[:16].upper(),
             "accountId": ACCT, "accessKeyId": "", "userName": user}
    if user != "HIDDEN_DUE_TO_SECURITY_REASONS":
        ident["arn"] = f"arn:aws:iam::{ACCT}:user/{user}"
    r = {"eventVersion": "1.08", "userIdentity": ident, "eventTime": iso(seconds), "eventSource": "signin.amazonaws.com",
         "eventName": "ConsoleLogin", "awsRegion": REGION, "sourceIPAddress": ip,
         "userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
         "requestParameters": None, "responseElements": {"ConsoleLogin": "Success" if ok else "Failure"},
         "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": "Yes" if ok else "No"},
         "eventID": uid("signin", seconds, user, ip, tag), "readOnly": False, "eventType": "AwsConsoleSignIn",
         "managementEvent": True, "recipientAccountId": ACCT, "eventCategory": "Management"}
    if not ok:
        r["errorMessage"] = "Failed authentication"
    return r

def write_trail(name, records):
    with open(os.path.join(HERE, name, "cloudtrail.json"), "w") as f:
        json.dump({"Records": sorted(records, key=lambda r: r["eventTime"])}, f, indent=1)
        f.write("\n")

# signin-burst-user: 12 failed sign-ins of the IAM user frank within 8
# minutes, rotated over three addresses (4 each, under the per-source
# threshold). Background: grace mistypes her password three times behind the
# office NAT and signs in; heidi fails once; ivan signs in.
recs = []
for i in range(12):
    recs.append(signin(40 * i, "frank", f"203.0.113.{61 + i % 3}", False, tag=i))
recs += [signin(100 + 30 * i, "grace", NAT, False, tag=i) for i in range(3)]
recs += [signin(200, "grace", NAT, True), signin(300, "heidi", NAT, False), signin(900, "ivan", NAT, True)]
write_trail("signin-burst-user", recs)

# signin-spray-source: one address tries 11 user names (some do not exist;
# CloudTrail hides those) once each within 6 minutes: no user reaches the
# per-user threshold, the address reaches the per-source one. Background as
# above.
recs = []
for i, u in enumerate(["admin", "administrator", "test", "HIDDEN_DUE_TO_SECURITY_REASONS", "backup", "devops",
                       "support", "HIDDEN_DUE_TO_SECURITY_REASONS", "deploy-admin", "ops", "security"]):
    recs.append(signin(1800 + 30 * i, u, "203.0.113.80", False, tag=i))
recs += [signin(1900 + 30 * i, "grace", NAT, False, tag=i) for i in range(3)]
recs += [signin(2000, "grace", NAT, True), signin(2700, "ivan", NAT, True)]
write_trail("signin-spray-source", recs)

# port-scan: 198.51.100.99 probes 21 ports of admin-1 (10.0.4.40, eni-0adm…)
# within 2 minutes; the security group rejects all but 443, so exactly the
# threshold of 20 rejects arrives. (More rejects than the threshold, shuffled,
# make the sequence engine emit one threshold alert per earliest window seen
# so far instead of one: see README.md.) Background: clients reaching 443
# (accepted, many flows from one busy client), a few stray rejects from other
# internet addresses, internal traffic.
ENI, WEB = "eni-0adm0000000000001", "10.0.4.40"
start = int(T0.timestamp()) + 3600
lines = ["version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"]
def flow(t, src, dst, sport, dport, action, packets=1, size=44):
    lines.append(f"2 {ACCT} {ENI} {src} {dst} {sport} {dport} 6 {packets} {packets * size} {start + t} {start + t + 60} {action} OK")
ports = [21, 22, 23, 25, 53, 80, 110, 135, 139, 143, 443, 445, 1433, 2375, 3306, 3389, 5432, 5900, 6379, 8080, 9200]
for i, p in enumerate(ports):
    flow(4 * i, "198.51.100.99", WEB, 40000 + i, p, "ACCEPT" if p == 443 else "REJECT")
for i in range(30):  # one busy client: many accepted flows to 443
    flow(5 * i, "192.0.2.140", WEB, 50000 + i, 443, "ACCEPT", packets=30, size=900)
for i, src in enumerate(["203.0.113.201", "203.0.113.202", "203.0.113.203"]):  # internet background noise
    flow(20 + 50 * i, src, WEB, 61000 + i, 23, "REJECT")
for i in range(5):
    flow(10 * i, "10.0.4.5", WEB, 41800 + i, 443, "ACCEPT", packets=40, size=228)
with open(os.path.join(HERE, "port-scan", "vpcflow.log"), "w") as f:
    f.write("\n".join(lines) + "\n")
