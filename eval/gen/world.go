package gen

import (
	"fmt"
	"time"
)

// host is one EC2 instance of the estate.
type host struct {
	name      string
	instance  string
	privateIP string
	publicIP  string // "" when the host has none
	eni       string
	role      string // instance profile role name
	account   string
	// agent says an OCSF agent (and Falco) runs on the host.
	agent bool
	// customFlow says its subnet's flow log uses the custom format.
	customFlow bool
	subnet     string
	vpc        string
}

// user is an IAM user with a long-term key.
type user struct {
	name, key, principalID string
}

// world is the estate of one scenario: accounts, hosts, roles, the release
// bucket and its pipeline, people and the addresses they come from.
type world struct {
	r      *rng
	region string
	// acct is the workload account (hosts, CodeDeploy); ciAcct holds the
	// release bucket and the pipeline (the same account unless the
	// scenario's pipeline is cross-account).
	acct, ciAcct string
	day          time.Time // midnight UTC of the first day

	web     host
	apps    []host // the deployment group's targets
	bastion host
	batch   host
	db      host
	api     host // a second public host, target of internet scans

	company       string
	bucket        string // release artifacts
	configBucket  string
	logBucket     string
	app, group    string // CodeDeploy application and deployment group
	groupID       string // deployment group id (the agent's directory)
	pipeline      string
	pipelineRole  string
	deployRole    string // cross-account CodeDeploy role in acct
	eventsRole    string
	ci            user
	ciIP          string
	natIP         string // the office's shared NAT address (a hub)
	hostNAT       string // the VPC's NAT gateway address
	admins        []user
	readers       []user
	detector      string
	flowLogV2     string
	flowLogCustom string
	webRoot       string
	phpFPM        string
	releasePrefix string
	appspecKey    string
	used          map[string]bool
}

// unique draws values until one is new to the scenario, so that two
// entities never share an address or id by chance.
func (w *world) unique(draw func() string) string {
	for {
		if v := draw(); !w.used[v] {
			w.used[v] = true
			return v
		}
	}
}

// externalIP is an internet address from the benchmarking range (hosting
// and VPS providers in the stories).
func (w *world) externalIP() string { return w.unique(w.r.benchIP) }

// residentialIP is an internet address from 192.0.2.0/24 (home ISPs in
// the stories).
func (w *world) residentialIP() string {
	return w.unique(func() string { return fmt.Sprintf("192.0.2.%d", w.r.between(2, 254)) })
}

var (
	companies = []string{"acme", "globex", "initech", "umbrella", "hooli", "vandelay", "stark", "wayne", "tyrell", "soylent", "wonka", "cyberdyne"}
	regions   = []string{"eu-west-1", "us-east-1", "us-west-2", "eu-central-1", "ap-southeast-2"}
	apps      = []string{"webapp", "storefront", "billing", "portal", "checkout"}
	people    = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter"}
)

func newWorld(r *rng, crossAccount bool) *world {
	w := &world{r: r, region: pick(r, regions), used: map[string]bool{}}
	w.acct = r.account()
	w.ciAcct = w.acct
	if crossAccount {
		w.ciAcct = r.account()
	}
	w.day = time.Date(2026, time.Month(r.between(1, 12)), r.between(1, 28), 0, 0, 0, 0, time.UTC)
	w.company = pick(r, companies)
	w.app = pick(r, apps)
	w.group = w.app + "-" + pick(r, []string{"prod", "production", "live", "prd"})
	w.groupID = r.uuid()
	w.pipeline = w.app + "-release"
	w.bucket = fmt.Sprintf("%s-%s-artifacts-%s", w.company, w.app, r.chars(6, lowerAlnum))
	w.configBucket = fmt.Sprintf("%s-config-%s", w.company, r.chars(6, lowerAlnum))
	w.logBucket = fmt.Sprintf("%s-logs-%s-%s", w.company, w.region, r.chars(4, lowerAlnum))
	w.pipelineRole = "codepipeline-" + w.app + "-role"
	w.deployRole = "codedeploy-cross-account-" + w.app
	w.eventsRole = "events-start-" + w.pipeline
	w.detector = r.hex(32)
	w.flowLogV2 = "fl-0" + r.hex(16)
	w.flowLogCustom = "fl-0" + r.hex(16)
	w.webRoot = pick(r, []string{"/var/www/html", "/var/www/html", "/srv/www/htdocs"})
	w.phpFPM = pick(r, []string{"/usr/sbin/php-fpm8.2", "/usr/sbin/php-fpm8.1", "/usr/sbin/php-fpm7.4"})
	w.releasePrefix = w.app + "/"
	w.appspecKey = w.app + "/appspec.yml"
	vpc := "vpc-0" + r.hex(16)
	pub, priv := "subnet-0"+r.hex(16), "subnet-0"+r.hex(16)
	mk := func(name, role string, subnet int, public, customFlow bool) host {
		h := host{name: name, instance: r.instance(), privateIP: r.privateIP(subnet), eni: r.eni(), role: role,
			account: w.acct, agent: true, customFlow: customFlow, vpc: vpc, subnet: priv}
		if public {
			h.publicIP, h.subnet = w.unique(func() string { return fmt.Sprintf("203.0.113.%d", r.between(100, 254)) }), pub
		}
		h.privateIP = w.unique(func() string { return r.privateIP(subnet) })
		return h
	}
	w.web = mk(pick(r, []string{"web-1", "web-01", "www-1", "frontend-1"}), w.app+"-web-role", 1, true, false)
	w.api = mk(pick(r, []string{"api-1", "edge-1", "gw-1"}), w.app+"-api-role", 1, true, false)
	w.bastion = mk(pick(r, []string{"bastion", "bastion-1", "jump-1"}), "bastion-role", 0, true, false)
	w.batch = mk(pick(r, []string{"batch-1", "cron-1", "jobs-1"}), "batch-jobs-role", 2, false, true)
	w.db = mk("db-1", "db-role", 3, false, true)
	n := r.between(2, 4)
	for i := range n {
		w.apps = append(w.apps, mk(fmt.Sprintf("app-%d", i+1), w.app+"-app-role", 2, false, true))
	}
	w.ci = user{name: pick(r, []string{"ci-deployer", "github-actions", "jenkins", "gitlab-runner"}), key: r.accessKey("AKIA"), principalID: r.principalID("AIDA")}
	w.ciIP = w.unique(func() string { return fmt.Sprintf("198.51.100.%d", r.between(100, 254)) })
	w.natIP = w.unique(func() string { return fmt.Sprintf("198.51.100.%d", r.between(2, 99)) })
	w.hostNAT = w.unique(func() string { return fmt.Sprintf("203.0.113.%d", r.between(2, 99)) })
	for i, p := range r.Perm(len(people))[:r.between(5, 9)] {
		u := user{name: people[p], key: r.accessKey("AKIA"), principalID: r.principalID("AIDA")}
		if i < 2 {
			u.name = "ops-" + u.name
			w.admins = append(w.admins, u)
		} else {
			w.readers = append(w.readers, u)
		}
	}
	return w
}

// hosts lists every host of the estate.
func (w *world) hosts() []host {
	return append([]host{w.web, w.api, w.bastion, w.batch, w.db}, w.apps...)
}

// at returns the time h hours into the first day.
func (w *world) at(h float64) time.Time {
	return w.day.Add(time.Duration(h * float64(time.Hour)))
}
