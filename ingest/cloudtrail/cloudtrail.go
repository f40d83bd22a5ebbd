// Package cloudtrail normalizes AWS CloudTrail records to OCSF the way Amazon
// Security Lake does: sign-in events become Authentication (3002), IAM user,
// password, MFA and policy changes become Account Change (3001), and every
// other call becomes API Activity (6003). Each event also carries the api
// object (operation, service, request and response as raw JSON), so rules can
// match any CloudTrail event by operation whatever its class.
//
// Normalize reads one record (one element of a delivery file's Records array,
// the detail of an EventBridge event, the message of a CloudWatch Logs event);
// the ingest package unwraps those containers. The record is decoded with a
// single validating pass of a hand-written scanner into typed fields: the
// record is copied once and every field is a substring of that copy, which is
// what keeps a 2 KB record within a few microseconds and a handful of
// allocations (see BenchmarkNormalize).
//
// Entities are extracted into observables, including those hidden in values:
// the instance id that names an instance profile's role session, the bucket,
// key and object of S3 data events and CodeDeploy revisions, the deployment,
// application and deployment group of CodeDeploy calls, the pipeline of
// CodePipeline calls, access keys returned by STS and IAM, instance ids in
// EC2 and SSM parameters.
package cloudtrail

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/musubi-xdr/musubi/ingest/internal/entity"
	"github.com/musubi-xdr/musubi/ingest/internal/scan"
	"github.com/musubi-xdr/musubi/ocsf"
)

// LogName is metadata.log_name of CloudTrail events.
const LogName = "cloudtrail"

type identity struct {
	typ, principalID, arn, accountID, accessKeyID, userName, invokedBy string
	issuerType, issuerARN, issuerUserName                              string
	creationDate, mfa, federatedProvider, sourceIdentity               string
}

type parser struct {
	s  scan.Scanner
	ev *ocsf.Event

	eventVersion, eventTime, eventSource, eventName, awsRegion string
	sourceIP, userAgent, errorCode, errorMessage, requestID    string
	eventID, eventType, recipientAccountID, eventCategory      string
	vpcEndpointID, readOnly                                    string
	id                                                         identity
	reqRaw, respRaw                                            []byte

	// From request and response parameters.
	reqName, reqUserName, reqRoleName, consoleLogin, mfaUsed string

	// unmapped lists the members without an OCSF home, as positions in the
	// record; buildUnmapped writes them as one JSON object.
	unmapped  [16]member
	nUnmapped int
}

type member struct {
	key        string
	start, end int
}

// Normalize turns one CloudTrail record into an OCSF event. maxDepth bounds
// the JSON nesting. The event's strings share one string copy of rec; Raw and
// the raw request and response parameters are sub-slices of rec itself, so
// rec must not be modified while the event is in use.
func Normalize(rec []byte, maxDepth int) (ocsf.Event, error) {
	var ev ocsf.Event
	err := NormalizeTo(&ev, rec, maxDepth)
	return ev, err
}

// NormalizeTo is Normalize writing into *ev, which must be zero: a decoder
// that appends events to a slice fills them in place instead of copying a
// large struct (BenchmarkNormalize). On error *ev is left partly filled.
func NormalizeTo(ev *ocsf.Event, rec []byte, maxDepth int) error {
	// One string copy that every field is a substring of: one allocation
	// instead of one per field.
	return NormalizeText(ev, rec, string(rec), maxDepth)
}

// NormalizeText is NormalizeTo with the string every field is a substring
// of given: text must hold rec's bytes. A caller that never modifies rec
// may pass rec itself as a string (unsafe.String) and save the copy; the
// event's strings then keep rec alive (ingest.Decoder.ShareInput).
func NormalizeText(ev *ocsf.Event, rec []byte, text string, maxDepth int) error {
	p := parser{s: scan.New(rec, text, maxDepth), ev: ev}
	defer ev.KeepObservables(ev.CollectObservables())
	if err := p.parse(); err != nil {
		return err
	}
	ev.Raw = rec[:len(rec):len(rec)]
	return p.build()
}

func (p *parser) parse() error {
	s := &p.s
	if !s.Object() {
		if !s.Failed() {
			return scan.Errorf(scan.ReasonWrongType, "a CloudTrail record must be a JSON object")
		}
		return s.Err()
	}
	for first := true; s.More(&first); {
		k := s.Key()
		switch k {
		case "eventVersion":
			p.eventVersion = s.String()
		case "eventTime":
			p.eventTime = s.String()
		case "eventSource":
			p.eventSource = s.String()
		case "eventName":
			p.eventName = s.String()
		case "awsRegion":
			p.awsRegion = s.String()
		case "sourceIPAddress":
			p.sourceIP = s.String()
		case "userAgent":
			p.userAgent = s.String()
		case "errorCode":
			p.errorCode = s.String()
		case "errorMessage":
			p.errorMessage = s.String()
		case "requestID":
			p.requestID = s.String()
		case "eventID":
			p.eventID = s.String()
		case "recipientAccountId":
			p.recipientAccountID = s.String()
		case "eventCategory":
			p.eventCategory = s.String()
		case "vpcEndpointId":
			p.vpcEndpointID = s.String()
		case "userIdentity":
			p.identity()
		case "requestParameters":
			p.reqRaw = p.walkRaw(sideRequest)
		case "responseElements":
			p.respRaw = p.walkRaw(sideResponse)
		case "resources":
			p.resources()
		case "additionalEventData":
			s.Peek()
			a := s.Pos
			p.additional()
			p.unmap(k, a, s.Pos)
		case "eventType":
			s.Peek()
			a := s.Pos
			p.eventType = s.String()
			p.unmap(k, a, s.Pos)
		case "readOnly":
			s.Peek()
			a := s.Pos
			p.readOnly = s.Scalar()
			p.unmap(k, a, s.Pos)
		default:
			// No OCSF home (tlsDetails, managementEvent, sharedEventID,
			// serviceEventDetails, future fields): keep it in unmapped.
			s.Peek()
			a := s.Pos
			s.Skip()
			p.unmap(k, a, s.Pos)
		}
	}
	s.End()
	return s.Err()
}

func (p *parser) identity() {
	s := &p.s
	if !s.Object() {
		return
	}
	id := &p.id
	for first := true; s.More(&first); {
		switch s.Key() {
		case "type":
			id.typ = s.String()
		case "principalId":
			id.principalID = s.String()
		case "arn":
			id.arn = s.String()
		case "accountId":
			id.accountID = s.String()
		case "accessKeyId":
			id.accessKeyID = s.String()
		case "userName":
			id.userName = s.String()
		case "invokedBy":
			id.invokedBy = s.String()
		case "sessionContext":
			p.sessionContext()
		default:
			s.Skip()
		}
	}
}

func (p *parser) sessionContext() {
	s := &p.s
	if !s.Object() {
		return
	}
	id := &p.id
	for first := true; s.More(&first); {
		switch s.Key() {
		case "attributes":
			if s.Object() {
				for first := true; s.More(&first); {
					switch s.Key() {
					case "creationDate":
						id.creationDate = s.String()
					case "mfaAuthenticated":
						id.mfa = s.Scalar()
					default:
						s.Skip()
					}
				}
			}
		case "sessionIssuer":
			if s.Object() {
				for first := true; s.More(&first); {
					switch s.Key() {
					case "type":
						id.issuerType = s.String()
					case "arn":
						id.issuerARN = s.String()
					case "userName":
						id.issuerUserName = s.String()
					default:
						s.Skip()
					}
				}
			}
		case "webIdFederationData":
			if s.Object() {
				for first := true; s.More(&first); {
					if s.Key() == "federatedProvider" {
						id.federatedProvider = s.String()
					} else {
						s.Skip()
					}
				}
			}
		case "sourceIdentity":
			id.sourceIdentity = s.String()
		default:
			s.Skip()
		}
	}
}

// additional reads additionalEventData for the console sign-in MFA flag.
func (p *parser) additional() {
	s := &p.s
	if s.Object() {
		for first := true; s.More(&first); {
			if s.Key() == "MFAUsed" {
				p.mfaUsed = s.Scalar()
			} else {
				s.Skip()
			}
		}
	}
}

func (p *parser) resources() {
	s := &p.s
	if !s.Array() {
		return
	}
	for first := true; s.More(&first); {
		var r ocsf.Resource
		if s.Object() {
			for first := true; s.More(&first); {
				switch s.Key() {
				case "ARN", "arn":
					r.UID = s.String()
				case "accountId":
					r.Owner.Account.UID = s.String()
				case "type":
					r.Type = s.String()
				default:
					s.Skip()
				}
			}
		}
		if r == (ocsf.Resource{}) {
			continue
		}
		if r.Name == "" {
			if a, ok := entity.ParseARN(r.UID); ok {
				r.Region = a.Region
				if i := strings.LastIndexAny(a.Resource, "/:"); i >= 0 && r.Type != "AWS::S3::Object" {
					r.Name = a.Resource[i+1:]
				} else {
					r.Name = a.Resource
				}
			}
		}
		if p.ev.Resources == nil {
			p.ev.Resources = make([]ocsf.Resource, 0, 2)
		}
		p.ev.Resources = append(p.ev.Resources, r)
	}
}

type side int

const (
	sideRequest side = iota
	sideResponse
)

// walkRaw walks request or response parameters for entities and returns
// them raw.
func (p *parser) walkRaw(sd side) []byte {
	s := &p.s
	s.Peek()
	a := s.Pos
	switch s.Peek() {
	case '{', '[':
		p.walk(sd, "", 0)
	default:
		s.Skip()
	}
	if s.Failed() || s.Pos-a == 4 && s.Buf[a] == 'n' {
		return nil
	}
	return s.Buf[a:s.Pos:s.Pos]
}

// walk visits every member of the value at the scanner, looking at string
// values by their key. parent is the key the value belongs to; level is 0
// for the top of the parameters.
func (p *parser) walk(sd side, parent string, level int) {
	s := &p.s
	switch s.Peek() {
	case '{':
		if !s.Object() {
			return
		}
		var bucket, key string
		for first := true; s.More(&first); {
			k := s.Key()
			switch s.Peek() {
			case '"':
				v := s.String()
				switch k {
				case "bucketName", "bucket", "Bucket":
					bucket = v
				case "key", "Key":
					key = v
				}
				p.value(sd, parent, k, v, level)
			case '{', '[':
				p.walk(sd, k, level+1)
			default:
				s.Skip()
			}
		}
		if bucket != "" && key != "" {
			name := "api.request.data.key"
			if parent == "s3Location" {
				name = "api.request.data.revision.s3Location.key"
			}
			if sd == sideResponse {
				name = "api.response.data.key"
			}
			p.ev.AddObservable(ocsf.EntityObject, name, bucket+"/"+key)
		}
	case '[':
		if !s.Array() {
			return
		}
		for first := true; s.More(&first); {
			if s.Peek() == '"' {
				p.value(sd, "", parent, s.String(), level)
			} else {
				p.walk(sd, parent, level+1)
			}
		}
	default:
		s.Skip()
	}
}

// value looks at one string of the request or response parameters.
func (p *parser) value(sd side, parent, k, v string, level int) {
	if v == "" {
		return
	}
	ev := p.ev
	switch k {
	case "bucketName", "bucket", "Bucket":
		ev.AddObservable(ocsf.EntityBucket, paramName(sd, parent, k), v)
	case "instanceId", "instanceIds", "InstanceId", "InstanceIds", "target", "values", "resourceId":
		if entity.IsInstanceID(v) {
			ev.AddObservable(ocsf.EntityInstance, paramName(sd, parent, k), v)
		}
	case "roleArn", "RoleArn":
		ev.AddObservable(ocsf.EntityRole, paramName(sd, parent, k), v)
	case "roleSessionName":
		if entity.IsInstanceID(v) {
			ev.AddObservable(ocsf.EntityInstance, paramName(sd, parent, k), v)
		}
	case "userName", "UserName":
		if level == 0 && sd == sideRequest {
			p.reqUserName = v
		}
		ev.AddObservable(ocsf.EntityUser, paramName(sd, parent, k), v)
	case "roleName":
		if level == 0 && sd == sideRequest {
			p.reqRoleName = v
		}
	case "accessKeyId", "AccessKeyId":
		ev.AddObservable(ocsf.EntityAccessKey, paramName(sd, parent, k), v)
	case "arn":
		if parent == "assumedRoleUser" {
			ev.AddObservable(ocsf.EntitySession, paramName(sd, parent, k), v)
			if _, sess, ok := entity.SessionName(v); ok && entity.IsInstanceID(sess) {
				ev.AddObservable(ocsf.EntityInstance, paramName(sd, parent, k), sess)
			}
		}
	case "deploymentId":
		ev.AddObservable(ocsf.EntityDeployment, paramName(sd, parent, k), v)
	case "applicationName":
		ev.AddObservable(ocsf.EntityApplication, paramName(sd, parent, k), v)
	case "deploymentGroupName", "currentDeploymentGroupName", "newDeploymentGroupName":
		ev.AddObservable(ocsf.EntityDeploymentGroup, paramName(sd, parent, k), v)
	case "pipelineName":
		ev.AddObservable(ocsf.EntityPipeline, paramName(sd, parent, k), v)
	case "name":
		if level == 0 && sd == sideRequest {
			p.reqName = v
		}
	case "clusterName":
		ev.AddObservable(ocsf.EntityCluster, paramName(sd, parent, k), v)
	case "ConsoleLogin":
		if sd == sideResponse {
			p.consoleLogin = v
		}
	}
}

// paramName returns the observable name of a parameter without allocating
// for the keys value() knows.
func paramName(sd side, parent, k string) string {
	if parent == "s3Location" {
		return "api.request.data.revision.s3Location." + k
	}
	if sd == sideResponse {
		if n, ok := respNames[k]; ok {
			return n
		}
		return "api.response.data"
	}
	if n, ok := reqNames[k]; ok {
		return n
	}
	return "api.request.data"
}

var paramKeys = []string{
	"bucketName", "bucket", "Bucket", "key", "Key", "instanceId", "instanceIds", "InstanceId",
	"InstanceIds", "target", "values", "resourceId", "roleArn", "RoleArn", "roleSessionName",
	"userName", "UserName", "accessKeyId", "AccessKeyId", "arn", "deploymentId", "applicationName",
	"deploymentGroupName", "currentDeploymentGroupName", "newDeploymentGroupName", "pipelineName",
	"clusterName",
}

var reqNames, respNames = func() (req, resp map[string]string) {
	req, resp = map[string]string{}, map[string]string{}
	for _, k := range paramKeys {
		req[k] = "api.request.data." + k
		resp[k] = "api.response.data." + k
	}
	return req, resp
}()

// accountChange maps IAM operations that change a user's account (Account
// Change activity ids, OCSF 1.1) as Security Lake does.
var accountChange = map[string]int{
	"CreateUser":             1, // Create
	"DeleteUser":             6, // Delete
	"ChangePassword":         3, // Password Change
	"CreateLoginProfile":     4, // Password Reset
	"UpdateLoginProfile":     4,
	"DeleteLoginProfile":     99,
	"AttachUserPolicy":       7, // Attach Policy
	"PutUserPolicy":          7,
	"AttachRolePolicy":       7,
	"PutRolePolicy":          7,
	"AttachGroupPolicy":      7,
	"PutGroupPolicy":         7,
	"DetachUserPolicy":       8, // Detach Policy
	"DeleteUserPolicy":       8,
	"DetachRolePolicy":       8,
	"DeleteRolePolicy":       8,
	"DetachGroupPolicy":      8,
	"DeleteGroupPolicy":      8,
	"EnableMFADevice":        10, // MFA Factor Enable
	"DeactivateMFADevice":    11, // MFA Factor Disable
	"DeleteVirtualMFADevice": 11,
}

var accountChangeNames = map[int]string{1: "Create", 3: "Password Change", 4: "Password Reset", 6: "Delete", 7: "Attach Policy", 8: "Detach Policy", 10: "MFA Factor Enable", 11: "MFA Factor Disable", 99: "Other"}

// API Activity ids by the verb an operation name starts with.
var verbs = map[string]int{
	"Create": 1, "Run": 1, "Allocate": 1, "Import": 1, "Register": 1, "Copy": 1, "Upload": 1, "Issue": 1, "Generate": 1, "Launch": 1,
	"Get": 2, "Describe": 2, "List": 2, "Head": 2, "Lookup": 2, "Search": 2, "Query": 2, "Select": 2, "Scan": 2, "BatchGet": 2, "Check": 2, "Download": 2, "Retrieve": 2, "View": 2, "Preview": 2, "Simulate": 2, "Estimate": 2, "Validate": 2,
	"Update": 3, "Modify": 3, "Put": 3, "Set": 3, "Change": 3, "Enable": 3, "Disable": 3, "Attach": 3, "Associate": 3, "Add": 3, "Replace": 3, "Reset": 3, "Tag": 3, "Untag": 3, "Start": 3, "Stop": 3, "Reboot": 3, "Restore": 3, "Authorize": 3, "Accept": 3, "Assign": 3, "Apply": 3, "Edit": 3, "Rotate": 3, "Send": 3, "Move": 3, "Rename": 3, "Upgrade": 3, "Link": 3, "Activate": 3, "Deactivate": 3, "Confirm": 3, "Leave": 3, "Invoke": 3, "Execute": 3,
	"Delete": 4, "Remove": 4, "Terminate": 4, "Detach": 4, "Deregister": 4, "Revoke": 4, "Disassociate": 4, "Release": 4, "Cancel": 4, "Purge": 4, "Unassign": 4, "Unlink": 4, "Unregister": 4, "Destroy": 4, "BatchDelete": 4,
}

var apiActivityNames = map[int]string{1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}

// apiActivity maps an operation to an API Activity id by its leading verb
// (the first capitalised word; "Batch" takes the next one too), falling
// back on readOnly.
func apiActivity(op, readOnly string) int {
	end := word(op, 0)
	if op[:end] == "Batch" {
		end = word(op, end)
	}
	if id, ok := verbs[op[:end]]; ok {
		return id
	}
	if readOnly == "true" {
		return 2
	}
	return 99
}

// word returns the end of the capitalised word starting at i.
func word(s string, i int) int {
	if i < len(s) {
		i++
	}
	for i < len(s) && (s[i] < 'A' || s[i] > 'Z') && (s[i] < '0' || s[i] > '9') {
		i++
	}
	return i
}

// typeNames caches "Class: Activity" captions so that building an event does
// not concatenate them.
var typeNames = map[int]string{}

func init() {
	for id, n := range apiActivityNames {
		typeNames[ocsf.ClassAPIActivity*100+id] = "API Activity: " + n
	}
	for id, n := range accountChangeNames {
		typeNames[ocsf.ClassAccountChange*100+id] = "Account Change: " + n
	}
	for id, n := range map[int]string{1: "Logon", 2: "Logoff", 99: "Other"} {
		typeNames[ocsf.ClassAuthentication*100+id] = "Authentication: " + n
	}
}

func setClass(ev *ocsf.Event, class, activity int, name string) {
	c := ocsf.Classes[class]
	ev.ClassUID, ev.ClassName = class, c.Name
	ev.CategoryUID, ev.CategoryName = c.CategoryUID, c.CategoryName
	ev.ActivityID, ev.ActivityName = activity, name
	ev.TypeUID = class*100 + activity
	ev.TypeName = typeNames[ev.TypeUID]
}

func (p *parser) build() error {
	ev := p.ev
	if p.eventTime == "" || p.eventName == "" || p.eventSource == "" {
		reason := scan.ReasonMissingField
		if p.s.Mismatch {
			reason = scan.ReasonWrongType
		}
		return scan.Errorf(reason, "a CloudTrail record needs eventTime, eventName and eventSource")
	}
	t, ok := scan.TimeMillis(p.eventTime)
	if !ok {
		return scan.Errorf(scan.ReasonInvalidValue, "eventTime is not a timestamp: "+truncate(p.eventTime))
	}
	ev.Time = t

	// Class and activity.
	switch {
	case p.eventSource == "signin.amazonaws.com" || p.eventType == "AwsConsoleSignIn":
		act, name := 99, "Other"
		switch p.eventName {
		case "ConsoleLogin", "CheckMfa", "SwitchRole", "RenewRoleCredentials", "ExternalIdPDirectoryLogin", "UserAuthentication", "Federate":
			act, name = 1, "Logon"
		case "ConsoleLogout", "Logout":
			act, name = 2, "Logoff"
		}
		setClass(ev, ocsf.ClassAuthentication, act, name)
		ev.IsMFA = p.mfaUsed == "Yes"
		ev.Service.Name = p.eventSource
		ev.IsRemote = true
	case p.eventSource == "iam.amazonaws.com" && accountChange[p.eventName] != 0:
		act := accountChange[p.eventName]
		setClass(ev, ocsf.ClassAccountChange, act, accountChangeNames[act])
		switch {
		case p.reqUserName != "":
			ev.User.Name, ev.User.Type = p.reqUserName, "IAMUser"
		case p.reqRoleName != "":
			ev.User.Name, ev.User.Type = p.reqRoleName, "Role"
		}
		if ev.User.Name != "" {
			ev.User.Account.UID = p.recipientAccountID
		}
	default:
		act := apiActivity(p.eventName, p.readOnly)
		setClass(ev, ocsf.ClassAPIActivity, act, apiActivityNames[act])
	}

	// Outcome.
	failed := p.errorCode != "" || p.errorMessage != "" || p.consoleLogin == "Failure"
	if failed {
		ev.StatusID, ev.Status = 2, "Failure"
		ev.StatusCode, ev.StatusDetail = p.errorCode, p.errorMessage
	} else {
		ev.StatusID, ev.Status = 1, "Success"
	}
	ev.SeverityID, ev.Severity = ocsf.SeverityInformational, "Informational"

	// Metadata.
	md := &ev.Metadata
	md.Version = ocsf.Version
	md.Product.Name, md.Product.VendorName, md.Product.Version = "CloudTrail", "AWS", p.eventVersion
	md.Product.Feature.Name = p.eventCategory
	md.LogName = LogName
	md.EventCode = p.eventType
	md.OriginalTime = p.eventTime
	md.UID = p.eventID
	if md.UID == "" {
		sum := sha256.Sum256(ev.Raw)
		md.UID = hex.EncodeToString(sum[:16])
	}

	// Cloud.
	ev.Cloud.Provider = "AWS"
	ev.Cloud.Region = p.awsRegion
	ev.Cloud.Account.UID = p.recipientAccountID
	if ev.Cloud.Account.UID == "" {
		ev.Cloud.Account.UID = p.id.accountID
	}

	// API.
	ev.API.Operation = p.eventName
	ev.API.Service.Name = p.eventSource
	ev.API.Request.UID = p.requestID
	ev.API.Request.Data = p.reqRaw
	ev.API.Response.Data = p.respRaw
	ev.API.Response.Error = p.errorCode
	ev.API.Response.ErrorMessage = p.errorMessage

	// Source.
	if entity.IsIP(p.sourceIP) {
		ev.SrcEndpoint.IP = p.sourceIP
	} else {
		ev.SrcEndpoint.Domain = p.sourceIP
	}
	ev.SrcEndpoint.UID = p.vpcEndpointID
	ev.HTTPRequest.UserAgent = p.userAgent

	p.actor()
	p.observables()
	ev.Unmapped = p.buildUnmapped()
	return nil
}

func (p *parser) actor() {
	ev, id := p.ev, &p.id
	u := &ev.Actor.User
	u.Type, u.UID, u.UIDAlt = id.typ, id.principalID, id.arn
	u.CredentialUID = id.accessKeyID
	u.Account.UID = id.accountID
	ev.Actor.InvokedBy = id.invokedBy
	ev.Actor.IDP.Name = id.federatedProvider
	switch id.typ {
	case "AssumedRole":
		u.Name = id.issuerUserName
		_, sess, _ := entity.SessionName(id.arn)
		ev.Actor.Session.Name = sess
		ev.Actor.Session.UID = id.arn
	case "FederatedUser":
		if i := strings.IndexByte(id.principalID, ':'); i >= 0 {
			u.Name = id.principalID[i+1:]
		}
		ev.Actor.Session.UID = id.arn
	case "AWSService":
		u.Name = id.invokedBy
	default:
		u.Name = id.userName
	}
	if u.Name == "" {
		u.Name = id.userName
	}
	if id.issuerARN != "" || id.creationDate != "" {
		ss := &ev.Actor.Session
		ss.Issuer = id.issuerARN
		if t, ok := scan.TimeMillis(id.creationDate); ok {
			ss.CreatedTime = t
		}
		ss.IsMFA = id.mfa == "true"
		ss.CredentialUID = id.accessKeyID
	}
	if ev.ClassUID == ocsf.ClassAuthentication {
		ev.User = *u
	}
}

func (p *parser) observables() {
	ev, id := p.ev, &p.id
	ev.AddObservable(ocsf.EntityAccount, "cloud.account.uid", ev.Cloud.Account.UID)
	ev.AddObservable(ocsf.EntityAccount, "actor.user.account.uid", id.accountID)
	ev.AddObservable(ocsf.EntityRegion, "cloud.region", p.awsRegion)
	ev.AddObservable(ocsf.EntityIP, "src_endpoint.ip", ev.SrcEndpoint.IP)
	ev.AddObservable(ocsf.EntityPrincipal, "actor.user.uid_alt", id.arn)
	if id.typ == "AssumedRole" {
		ev.AddObservable(ocsf.EntitySession, "actor.session.uid", id.arn)
	}
	if id.issuerType == "Role" {
		ev.AddObservable(ocsf.EntityRole, "actor.session.issuer", id.issuerARN)
	}
	if id.typ == "IAMUser" || id.typ == "Root" {
		ev.AddObservable(ocsf.EntityUser, "actor.user.name", ev.Actor.User.Name)
	} else if id.issuerType == "IAMUser" {
		ev.AddObservable(ocsf.EntityUser, "actor.user.name", id.issuerUserName)
	}
	ev.AddObservable(ocsf.EntityAccessKey, "actor.user.credential_uid", id.accessKeyID)
	if sess := ev.Actor.Session.Name; entity.IsInstanceID(sess) {
		// An instance profile's credentials: the session name is the id of
		// the instance the keys were issued to.
		ev.AddObservable(ocsf.EntityInstance, "actor.session.name", sess)
	}
	if p.eventSource == "codepipeline.amazonaws.com" && p.reqName != "" {
		ev.AddObservable(ocsf.EntityPipeline, "api.request.data.name", p.reqName)
	}
	for _, r := range ev.Resources {
		switch r.Type {
		case "AWS::IAM::Role":
			ev.AddObservable(ocsf.EntityRole, "resources.uid", r.UID)
		case "AWS::S3::Bucket":
			ev.AddObservable(ocsf.EntityBucket, "resources.name", r.Name)
		case "AWS::S3::Object":
			ev.AddObservable(ocsf.EntityObject, "resources.name", r.Name)
		case "AWS::EC2::Instance":
			if entity.IsInstanceID(r.Name) {
				ev.AddObservable(ocsf.EntityInstance, "resources.name", r.Name)
			}
		}
	}
	if ev.User.Name != "" && ev.ClassUID == ocsf.ClassAccountChange && ev.User.Type == "IAMUser" {
		ev.AddObservable(ocsf.EntityUser, "user.name", ev.User.Name)
	}
}

// unmap notes a member without an OCSF home, the value at Buf[start:end]
// (nothing for null). Members past the sixteenth stay in the raw record only.
func (p *parser) unmap(key string, start, end int) {
	if p.s.Failed() || end-start == 4 && p.s.Buf[start] == 'n' || p.nUnmapped == len(p.unmapped) {
		return
	}
	p.unmapped[p.nUnmapped] = member{key, start, end}
	p.nUnmapped++
}

// buildUnmapped writes the noted members as one JSON object, in one
// allocation of the exact size.
func (p *parser) buildUnmapped() []byte {
	if p.nUnmapped == 0 {
		return nil
	}
	ms := p.unmapped[:p.nUnmapped]
	n := 1
	for _, m := range ms {
		n += len(m.key) + 4 + m.end - m.start
	}
	out := make([]byte, 0, n+8)
	for i, m := range ms {
		if i == 0 {
			out = append(out, '{')
		} else {
			out = append(out, ',')
		}
		out = scan.AppendString(out, m.key)
		out = append(out, ':')
		out = append(out, p.s.Buf[m.start:m.end]...)
	}
	return append(out, '}')
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
