package ocsf

import "sync"

// Entity is the kind of thing an observable names. The correlator joins
// events and alerts through entities of the same kind and value.
type Entity string

// The entity kinds Musubi extracts and correlates on.
const (
	EntityAccount         Entity = "account"          // AWS account id
	EntityRegion          Entity = "region"           // AWS region
	EntityInstance        Entity = "instance"         // EC2 instance id (i-…)
	EntityIP              Entity = "ip"               // IPv4 or IPv6 address
	EntityPrincipal       Entity = "principal"        // principal ARN
	EntityRole            Entity = "role"             // IAM role ARN
	EntitySession         Entity = "session"          // role session ARN (assumed-role/<role>/<name>)
	EntityAccessKey       Entity = "access_key"       // AKIA…/ASIA… access key id
	EntityUser            Entity = "user"             // IAM user name or OS user name
	EntityBucket          Entity = "bucket"           // S3 bucket name
	EntityObject          Entity = "object"           // S3 object as bucket/key
	EntityDeployment      Entity = "deployment"       // CodeDeploy deployment id (d-…)
	EntityApplication     Entity = "application"      // CodeDeploy application
	EntityDeploymentGroup Entity = "deployment_group" // CodeDeploy deployment group
	EntityPipeline        Entity = "pipeline"         // CodePipeline name
	EntityHost            Entity = "host"             // host name of an agent
	EntityProcess         Entity = "process"          // process, as host:pid or a process uid
	EntityFile            Entity = "file"             // file path
	EntityHash            Entity = "hash"             // file hash value
	EntityDomain          Entity = "domain"           // DNS name
	EntityFinding         Entity = "finding"          // GuardDuty or other finding id
	EntityCluster         Entity = "cluster"          // EKS/ECS cluster
	EntityContainer       Entity = "container"        // container id
)

// Entities lists every entity kind, in a stable order.
var Entities = []Entity{
	EntityAccount, EntityRegion, EntityInstance, EntityIP, EntityPrincipal,
	EntityRole, EntitySession, EntityAccessKey, EntityUser, EntityBucket,
	EntityObject, EntityDeployment, EntityApplication, EntityDeploymentGroup,
	EntityPipeline, EntityHost, EntityProcess, EntityFile, EntityHash,
	EntityDomain, EntityFinding, EntityCluster, EntityContainer,
}

// IsAccountID reports whether s is an AWS account id, the value of an
// EntityAccount: exactly 12 decimal digits.
func IsAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Valid reports whether e is a known entity kind.
func (e Entity) Valid() bool {
	for _, k := range Entities {
		if k == e {
			return true
		}
	}
	return false
}

// OCSF observable type ids used by Musubi.
const (
	ObservableHostname    = 1
	ObservableIP          = 2
	ObservableUserName    = 4
	ObservableFileName    = 7
	ObservableHash        = 8
	ObservableProcessName = 9
	ObservableResourceUID = 10
	ObservableOther       = 99
)

// Observable is an OCSF observable. Name is the attribute the value was found
// in (for example "actor.session.name"); TypeID and Type are the OCSF
// observable type; Entity is Musubi's entity kind, an extension attribute that
// lets the correlator join without re-deriving the kind from the path. A
// value hidden inside another (the instance id that is a role session's
// name) is listed with the attribute it was found in.
type Observable struct {
	Name   string `json:"name" cel:"name"`
	Type   string `json:"type,omitempty" cel:"type"`
	TypeID int    `json:"type_id" cel:"type_id"`
	Value  string `json:"value" cel:"value"`
	Entity Entity `json:"entity" cel:"entity"`
}

// observableType returns the OCSF observable type of an entity kind. A
// switch, not a map: it runs for every observable of every event.
func observableType(kind Entity) (int, string) {
	switch kind {
	case EntityIP:
		return ObservableIP, "IP Address"
	case EntityHost, EntityDomain:
		return ObservableHostname, "Hostname"
	case EntityUser:
		return ObservableUserName, "User Name"
	case EntityFile:
		return ObservableFileName, "File Name"
	case EntityHash:
		return ObservableHash, "Hash"
	case EntityProcess:
		return ObservableProcessName, "Process Name"
	case EntityRegion:
		return ObservableOther, "Other"
	}
	return ObservableResourceUID, "Resource UID"
}

// NewObservable returns the observable for an entity found at attribute name.
func NewObservable(kind Entity, name, value string) Observable {
	id, caption := observableType(kind)
	return Observable{Name: name, Type: caption, TypeID: id, Value: value, Entity: kind}
}

// AddObservable appends an observable unless value is empty or the same kind
// and value is already listed.
func (e *Event) AddObservable(kind Entity, name, value string) {
	if value == "" {
		return
	}
	for i := range e.Observables {
		if e.Observables[i].Entity == kind && e.Observables[i].Value == value {
			return
		}
	}
	e.Observables = append(e.Observables, NewObservable(kind, name, value))
}

// observableRooms are the lists decoders collect observables in
// (CollectObservables).
var observableRooms = sync.Pool{New: func() any { s := make([]Observable, 0, 32); return &s }}

// CollectObservables gives e an empty pooled list to collect its
// observables in (AddObservable); KeepObservables ends it. A decoder cannot
// know beforehand how many observables an event names: the room it made
// for the most (16, 1,152 bytes) stayed with every event, in flight and in
// every batch, for the four to eight most events name.
func (e *Event) CollectObservables() (room *[]Observable) {
	room = observableRooms.Get().(*[]Observable)
	e.Observables = (*room)[:0]
	return room
}

// KeepObservables ends CollectObservables: e's observables are copied into
// a list of their own, exactly sized (nil when there are none), and room,
// cleared so that it keeps no record alive, goes back to the pool.
func (e *Event) KeepObservables(room *[]Observable) {
	got := e.Observables
	e.Observables = nil
	if len(got) > 0 {
		e.Observables = make([]Observable, len(got))
		copy(e.Observables, got)
	}
	clear(got)
	*room = got[:0] // append may have grown it
	observableRooms.Put(room)
}

// EntityValues returns the values of every observable of the given kind.
func (e *Event) EntityValues(kind Entity) []string {
	var out []string
	for _, o := range e.Observables {
		if o.Entity == kind {
			out = append(out, o.Value)
		}
	}
	return out
}
