// Package guardduty normalizes Amazon GuardDuty findings to OCSF Detection
// Finding (2004). Findings come as GetFindings output elements, S3 exports or
// the detail of a "GuardDuty Finding" EventBridge event; the ingest package
// unwraps those containers and Normalize reads one finding.
//
// Every resource type is mapped to resources and observables: AccessKey,
// Instance (with its network interfaces and instance profile), S3Bucket,
// EKSCluster (Kubernetes user and workload), ECSCluster (task and
// containers), Container, Lambda, RDS; Runtime Monitoring findings carry
// their process, its parent and its lineage (whose executable paths may name
// a CodeDeploy deployment); Extended Threat Detection attack sequences carry
// their signals as finding_info.related_events and their actors, resources
// and endpoints as observables. The action (API call, network connection, DNS
// request, port probe, Kubernetes API call, RDS login) fills api,
// src_endpoint, dst_endpoint, connection_info and query.
//
// Findings are low-volume, so this decoder uses encoding/json into typed
// structs (never map[string]any); ingest validates the record (depth,
// UTF-8) before.
package guardduty

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/musubi-xdr/musubi/ingest/internal/entity"
	"github.com/musubi-xdr/musubi/ingest/internal/scan"
	"github.com/musubi-xdr/musubi/ocsf"
)

// LogName is metadata.log_name of GuardDuty events.
const LogName = "guardduty"

type finding struct {
	AccountID     string          `json:"accountId"`
	Arn           string          `json:"arn"`
	CreatedAt     string          `json:"createdAt"`
	Description   string          `json:"description"`
	ID            string          `json:"id"`
	Partition     string          `json:"partition"`
	Region        string          `json:"region"`
	Resource      resource        `json:"resource"`
	SchemaVersion string          `json:"schemaVersion"`
	Service       service         `json:"service"`
	Severity      json.Number     `json:"severity"`
	Title         string          `json:"title"`
	Type          string          `json:"type"`
	UpdatedAt     string          `json:"updatedAt"`
	Confidence    json.RawMessage `json:"confidence"`
}

type resource struct {
	ResourceType     string `json:"resourceType"`
	AccessKeyDetails *struct {
		AccessKeyID string `json:"accessKeyId"`
		PrincipalID string `json:"principalId"`
		UserName    string `json:"userName"`
		UserType    string `json:"userType"`
	} `json:"accessKeyDetails"`
	InstanceDetails *instanceDetails `json:"instanceDetails"`
	S3BucketDetails []struct {
		Arn  string `json:"arn"`
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"s3BucketDetails"`
	EksClusterDetails *struct {
		Name  string `json:"name"`
		Arn   string `json:"arn"`
		VpcID string `json:"vpcId"`
	} `json:"eksClusterDetails"`
	KubernetesDetails *struct {
		KubernetesUserDetails struct {
			Username string   `json:"username"`
			UID      string   `json:"uid"`
			Groups   []string `json:"groups"`
		} `json:"kubernetesUserDetails"`
		KubernetesWorkloadDetails struct {
			Name       string      `json:"name"`
			Type       string      `json:"type"`
			UID        string      `json:"uid"`
			Namespace  string      `json:"namespace"`
			Containers []container `json:"containers"`
		} `json:"kubernetesWorkloadDetails"`
	} `json:"kubernetesDetails"`
	EcsClusterDetails *struct {
		Name        string `json:"name"`
		Arn         string `json:"arn"`
		TaskDetails struct {
			Arn           string      `json:"arn"`
			DefinitionArn string      `json:"definitionArn"`
			Containers    []container `json:"containers"`
		} `json:"taskDetails"`
	} `json:"ecsClusterDetails"`
	ContainerDetails *container `json:"containerDetails"`
	LambdaDetails    *struct {
		FunctionName string `json:"functionName"`
		FunctionArn  string `json:"functionArn"`
		Role         string `json:"role"`
	} `json:"lambdaDetails"`
	RdsDbInstanceDetails *struct {
		DbInstanceIdentifier string `json:"dbInstanceIdentifier"`
		DbInstanceArn        string `json:"dbInstanceArn"`
		DbClusterIdentifier  string `json:"dbClusterIdentifier"`
	} `json:"rdsDbInstanceDetails"`
	RdsDbUserDetails *struct {
		User string `json:"user"`
	} `json:"rdsDbUserDetails"`
}

type container struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Image string `json:"image"`
}

type instanceDetails struct {
	InstanceID         string `json:"instanceId"`
	AvailabilityZone   string `json:"availabilityZone"`
	ImageID            string `json:"imageId"`
	IamInstanceProfile *struct {
		Arn string `json:"arn"`
		ID  string `json:"id"`
	} `json:"iamInstanceProfile"`
	NetworkInterfaces []struct {
		PrivateIPAddress   string   `json:"privateIpAddress"`
		PrivateDNSName     string   `json:"privateDnsName"`
		PublicIP           string   `json:"publicIp"`
		PublicDNSName      string   `json:"publicDnsName"`
		VpcID              string   `json:"vpcId"`
		SubnetID           string   `json:"subnetId"`
		NetworkInterfaceID string   `json:"networkInterfaceId"`
		Ipv6Addresses      []string `json:"ipv6Addresses"`
	} `json:"networkInterfaces"`
	Platform string `json:"platform"`
}

type ipDetails struct {
	IPAddressV4  string `json:"ipAddressV4"`
	IPAddressV6  string `json:"ipAddressV6"`
	Organization struct {
		Asn    json.Number `json:"asn"`
		AsnOrg string      `json:"asnOrg"`
	} `json:"organization"`
	Country struct {
		CountryName string `json:"countryName"`
		CountryCode string `json:"countryCode"`
	} `json:"country"`
	City struct {
		CityName string `json:"cityName"`
	} `json:"city"`
}

func (d *ipDetails) ip() string {
	if d == nil {
		return ""
	}
	if d.IPAddressV4 != "" {
		return d.IPAddressV4
	}
	return d.IPAddressV6
}

type portDetails struct {
	Port json.Number `json:"port"`
}

type service struct {
	Action *struct {
		ActionType       string `json:"actionType"`
		AwsAPICallAction *struct {
			API             string     `json:"api"`
			ServiceName     string     `json:"serviceName"`
			CallerType      string     `json:"callerType"`
			ErrorCode       string     `json:"errorCode"`
			UserAgent       string     `json:"userAgent"`
			RemoteIPDetails *ipDetails `json:"remoteIpDetails"`
			DomainDetails   *struct {
				Domain string `json:"domain"`
			} `json:"domainDetails"`
			RemoteAccountDetails *struct {
				AccountID string `json:"accountId"`
			} `json:"remoteAccountDetails"`
			AffectedResources map[string]string `json:"affectedResources"`
		} `json:"awsApiCallAction"`
		NetworkConnectionAction *struct {
			ConnectionDirection string       `json:"connectionDirection"`
			Protocol            string       `json:"protocol"`
			Blocked             bool         `json:"blocked"`
			LocalIPDetails      *ipDetails   `json:"localIpDetails"`
			LocalPortDetails    *portDetails `json:"localPortDetails"`
			RemoteIPDetails     *ipDetails   `json:"remoteIpDetails"`
			RemotePortDetails   *portDetails `json:"remotePortDetails"`
		} `json:"networkConnectionAction"`
		DNSRequestAction *struct {
			Domain   string `json:"domain"`
			Protocol string `json:"protocol"`
			Blocked  bool   `json:"blocked"`
		} `json:"dnsRequestAction"`
		PortProbeAction *struct {
			Blocked          bool `json:"blocked"`
			PortProbeDetails []struct {
				LocalPortDetails *portDetails `json:"localPortDetails"`
				RemoteIPDetails  *ipDetails   `json:"remoteIpDetails"`
			} `json:"portProbeDetails"`
		} `json:"portProbeAction"`
		KubernetesAPICallAction *struct {
			RequestURI      string     `json:"requestUri"`
			Verb            string     `json:"verb"`
			UserAgent       string     `json:"userAgent"`
			SourceIPs       []string   `json:"sourceIps"`
			RemoteIPDetails *ipDetails `json:"remoteIpDetails"`
		} `json:"kubernetesApiCallAction"`
		RdsLoginAttemptAction *struct {
			RemoteIPDetails *ipDetails `json:"remoteIpDetails"`
		} `json:"rdsLoginAttemptAction"`
	} `json:"action"`
	RuntimeDetails *struct {
		Process *process `json:"process"`
		Context *struct {
			CommandLineExample string   `json:"commandLineExample"`
			ScriptPath         string   `json:"scriptPath"`
			ModifyingProcess   *process `json:"modifyingProcess"`
			TargetProcess      *process `json:"targetProcess"`
			ModifiedAt         string   `json:"modifiedAt"`
			LibraryPath        string   `json:"libraryPath"`
			Address            string   `json:"address"`
		} `json:"context"`
	} `json:"runtimeDetails"`
	Detection *struct {
		Sequence *sequence `json:"sequence"`
	} `json:"detection"`
	Archived       bool            `json:"archived"`
	Count          json.Number     `json:"count"`
	DetectorID     string          `json:"detectorId"`
	EventFirstSeen string          `json:"eventFirstSeen"`
	EventLastSeen  string          `json:"eventLastSeen"`
	FeatureName    string          `json:"featureName"`
	ResourceRole   string          `json:"resourceRole"`
	ServiceName    string          `json:"serviceName"`
	AdditionalInfo json.RawMessage `json:"additionalInfo"`
	Evidence       json.RawMessage `json:"evidence"`
}

type process struct {
	Name             string      `json:"name"`
	ExecutablePath   string      `json:"executablePath"`
	ExecutableSha256 string      `json:"executableSha256"`
	NamespacePid     json.Number `json:"namespacePid"`
	Pwd              string      `json:"pwd"`
	Pid              json.Number `json:"pid"`
	StartTime        string      `json:"startTime"`
	UUID             string      `json:"uuid"`
	ParentUUID       string      `json:"parentUuid"`
	User             string      `json:"user"`
	UserID           json.Number `json:"userId"`
	Euid             json.Number `json:"euid"`
	Lineage          []struct {
		StartTime      string      `json:"startTime"`
		NamespacePid   json.Number `json:"namespacePid"`
		UserID         json.Number `json:"userId"`
		Name           string      `json:"name"`
		Pid            json.Number `json:"pid"`
		UUID           string      `json:"uuid"`
		ExecutablePath string      `json:"executablePath"`
		Euid           json.Number `json:"euid"`
		ParentUUID     string      `json:"parentUuid"`
	} `json:"lineage"`
}

type sequence struct {
	UID         string `json:"uid"`
	Description string `json:"description"`
	Actors      []struct {
		ID      string `json:"id"`
		Session *struct {
			UID       string `json:"uid"`
			MfaStatus string `json:"mfaStatus"`
			Issuer    string `json:"issuer"`
		} `json:"session"`
		User *struct {
			Name          string `json:"name"`
			UID           string `json:"uid"`
			Type          string `json:"type"`
			CredentialUID string `json:"credentialUid"`
			Account       *struct {
				UID string `json:"uid"`
			} `json:"account"`
		} `json:"user"`
	} `json:"actors"`
	Resources []struct {
		UID          string `json:"uid"`
		Name         string `json:"name"`
		AccountID    string `json:"accountId"`
		ResourceType string `json:"resourceType"`
		Region       string `json:"region"`
		Service      string `json:"service"`
	} `json:"resources"`
	Endpoints []struct {
		ID     string      `json:"id"`
		IP     string      `json:"ip"`
		Domain string      `json:"domain"`
		Port   json.Number `json:"port"`
	} `json:"endpoints"`
	Signals []struct {
		UID         string          `json:"uid"`
		Type        string          `json:"type"`
		Description string          `json:"description"`
		Name        string          `json:"name"`
		CreatedAt   json.RawMessage `json:"createdAt"`
		UpdatedAt   json.RawMessage `json:"updatedAt"`
		FirstSeenAt json.RawMessage `json:"firstSeenAt"`
		LastSeenAt  json.RawMessage `json:"lastSeenAt"`
		Severity    json.Number     `json:"severity"`
		Count       json.Number     `json:"count"`
	} `json:"signals"`
	SequenceIndicators []struct {
		Key    string   `json:"key"`
		Values []string `json:"values"`
		Title  string   `json:"title"`
	} `json:"sequenceIndicators"`
}

// Normalize turns one GuardDuty finding into an OCSF Detection Finding.
func Normalize(rec []byte, maxDepth int) (ocsf.Event, error) {
	if err := scan.Validate(rec, maxDepth); err != nil {
		return ocsf.Event{}, err
	}
	raw := rec[:len(rec):len(rec)]
	var f finding
	if err := json.Unmarshal(raw, &f); err != nil {
		return ocsf.Event{}, err
	}
	if f.ID == "" || f.Type == "" {
		return ocsf.Event{}, scan.Errorf(scan.ReasonMissingField, "a GuardDuty finding needs id and type")
	}
	updated, ok := scan.TimeMillis(f.UpdatedAt)
	if !ok {
		if updated, ok = scan.TimeMillis(f.CreatedAt); !ok {
			return ocsf.Event{}, scan.Errorf(scan.ReasonInvalidValue, "a GuardDuty finding needs updatedAt or createdAt as a timestamp")
		}
	}
	created, _ := scan.TimeMillis(f.CreatedAt)

	var ev ocsf.Event
	ev.Raw = raw
	act, actName := 1, "Create"
	if created != 0 && updated > created {
		act, actName = 2, "Update"
	}
	c := ocsf.Classes[ocsf.ClassDetectionFinding]
	ev.ClassUID, ev.ClassName, ev.CategoryUID, ev.CategoryName = c.UID, c.Name, c.CategoryUID, c.CategoryName
	ev.ActivityID, ev.ActivityName = act, actName
	ev.TypeUID, ev.TypeName = c.UID*100+act, c.Name+": "+actName
	ev.Time = updated
	sev, _ := strconv.ParseFloat(f.Severity.String(), 64)
	ev.SeverityID = severityID(sev)
	ev.Severity = ocsf.SeverityName(ev.SeverityID)
	ev.StatusID, ev.Status = 1, "New"
	if f.Service.Archived {
		ev.StatusID, ev.Status = 4, "Archived"
	}
	ev.Message = f.Title

	md := &ev.Metadata
	md.Version = ocsf.Version
	md.Product.Name, md.Product.VendorName, md.Product.Version = "GuardDuty", "AWS", f.SchemaVersion
	md.Product.Feature.Name = f.Service.FeatureName
	md.LogName = LogName
	md.UID = f.ID + ":" + f.UpdatedAt
	md.EventCode = f.Type
	md.OriginalTime = f.UpdatedAt

	ev.Cloud.Provider = "AWS"
	ev.Cloud.Account.UID = f.AccountID
	ev.Cloud.Region = f.Region

	fi := &ev.FindingInfo
	fi.UID = f.ID
	fi.ProductUID = f.Arn
	fi.Title = f.Title
	fi.Desc = f.Description
	fi.Types = []string{f.Type}
	fi.CreatedTime = created
	fi.ModifiedTime = updated
	fi.FirstSeen, _ = scan.TimeMillis(f.Service.EventFirstSeen)
	fi.LastSeen, _ = scan.TimeMillis(f.Service.EventLastSeen)

	ev.AddObservable(ocsf.EntityFinding, "finding_info.uid", f.ID)
	ev.AddObservable(ocsf.EntityAccount, "cloud.account.uid", f.AccountID)
	ev.AddObservable(ocsf.EntityRegion, "cloud.region", f.Region)

	mapResource(&ev, &f.Resource, f.Partition, f.Region, f.AccountID)
	mapAction(&ev, &f.Service)
	mapRuntime(&ev, &f.Service)
	if f.Service.Detection != nil && f.Service.Detection.Sequence != nil {
		mapSequence(&ev, f.Service.Detection.Sequence)
	}
	ev.Unmapped = unmapped(&f)
	return ev, nil
}

func severityID(s float64) int {
	switch {
	case s >= 9:
		return ocsf.SeverityCritical
	case s >= 7:
		return ocsf.SeverityHigh
	case s >= 4:
		return ocsf.SeverityMedium
	case s >= 1:
		return ocsf.SeverityLow
	case s > 0:
		return ocsf.SeverityInformational
	}
	return ocsf.SeverityUnknown
}

func addResource(ev *ocsf.Event, typ, uid, name, region, account string) {
	if uid == "" && name == "" {
		return
	}
	r := ocsf.Resource{UID: uid, Name: name, Type: typ, Region: region}
	r.Owner.Account.UID = account
	ev.Resources = append(ev.Resources, r)
}

func mapResource(ev *ocsf.Event, r *resource, partition, region, account string) {
	if ak := r.AccessKeyDetails; ak != nil {
		addResource(ev, "AccessKey", ak.AccessKeyID, ak.UserName, region, account)
		ev.Actor.User.Name = ak.UserName
		ev.Actor.User.UID = ak.PrincipalID
		ev.Actor.User.Type = ak.UserType
		ev.Actor.User.CredentialUID = ak.AccessKeyID
		ev.AddObservable(ocsf.EntityAccessKey, "actor.user.credential_uid", ak.AccessKeyID)
		if ak.UserType == "AssumedRole" {
			// For instance credentials the user name is the role name and the
			// principal id ends with the session name (the instance id).
			if i := strings.IndexByte(ak.PrincipalID, ':'); i >= 0 {
				sess := ak.PrincipalID[i+1:]
				ev.Actor.Session.Name = sess
				if partition == "" {
					partition = "aws"
				}
				// The session and role ARNs as CloudTrail writes them, so
				// that the finding joins the calls made with the keys.
				if ak.UserName != "" && account != "" {
					ev.Actor.Session.UID = "arn:" + partition + ":sts::" + account + ":assumed-role/" + ak.UserName + "/" + sess
					ev.Actor.Session.Issuer = "arn:" + partition + ":iam::" + account + ":role/" + ak.UserName
					ev.AddObservable(ocsf.EntitySession, "actor.session.uid", ev.Actor.Session.UID)
					ev.AddObservable(ocsf.EntityRole, "actor.session.issuer", ev.Actor.Session.Issuer)
				}
				if entity.IsInstanceID(sess) {
					ev.AddObservable(ocsf.EntityInstance, "actor.session.name", sess)
				}
			}
		} else {
			ev.AddObservable(ocsf.EntityUser, "actor.user.name", ak.UserName)
		}
	}
	if in := r.InstanceDetails; in != nil {
		addResource(ev, "AWS::EC2::Instance", in.InstanceID, in.InstanceID, region, account)
		ev.Device.InstanceUID = in.InstanceID
		ev.Device.Region = region
		ev.Cloud.Zone = in.AvailabilityZone
		ev.AddObservable(ocsf.EntityInstance, "device.instance_uid", in.InstanceID)
		if p := in.IamInstanceProfile; p != nil {
			ev.AddObservable(ocsf.EntityPrincipal, "resources.instance_profile", p.Arn)
		}
		for i, ni := range in.NetworkInterfaces {
			if i == 0 {
				ev.Device.IP = ni.PrivateIPAddress
				ev.Device.Hostname = ni.PrivateDNSName
			}
			ev.AddObservable(ocsf.EntityIP, "device.ip", ni.PrivateIPAddress)
			ev.AddObservable(ocsf.EntityIP, "device.public_ip", ni.PublicIP)
			for _, v6 := range ni.Ipv6Addresses {
				ev.AddObservable(ocsf.EntityIP, "device.ipv6", v6)
			}
			ev.AddObservable(ocsf.EntityHost, "device.hostname", ni.PrivateDNSName)
		}
	}
	for _, b := range r.S3BucketDetails {
		addResource(ev, "AWS::S3::Bucket", b.Arn, b.Name, region, account)
		ev.AddObservable(ocsf.EntityBucket, "resources.name", b.Name)
	}
	if k := r.EksClusterDetails; k != nil {
		addResource(ev, "AWS::EKS::Cluster", k.Arn, k.Name, region, account)
		ev.AddObservable(ocsf.EntityCluster, "resources.name", k.Name)
	}
	if k := r.KubernetesDetails; k != nil {
		u := k.KubernetesUserDetails
		if u.Username != "" {
			ev.Actor.User.Name = u.Username
			ev.Actor.User.UID = u.UID
			for _, g := range u.Groups {
				ev.Actor.User.Groups = append(ev.Actor.User.Groups, ocsf.Group{Name: g})
			}
			ev.AddObservable(ocsf.EntityUser, "actor.user.name", u.Username)
			if _, sess, ok := entity.SessionName(u.Username); ok {
				// An IAM role mapped into Kubernetes: the user is the
				// role session (of a node, the instance id).
				ev.AddObservable(ocsf.EntitySession, "actor.user.name", u.Username)
				if entity.IsInstanceID(sess) {
					ev.AddObservable(ocsf.EntityInstance, "actor.user.name", sess)
				}
			}
		}
		w := k.KubernetesWorkloadDetails
		if w.Name != "" {
			addResource(ev, "Kubernetes"+w.Type, w.UID, w.Namespace+"/"+w.Name, region, account)
		}
		addContainers(ev, w.Containers)
	}
	if e := r.EcsClusterDetails; e != nil {
		addResource(ev, "AWS::ECS::Cluster", e.Arn, e.Name, region, account)
		ev.AddObservable(ocsf.EntityCluster, "resources.name", e.Name)
		addResource(ev, "AWS::ECS::Task", e.TaskDetails.Arn, "", region, account)
		addContainers(ev, e.TaskDetails.Containers)
	}
	if c := r.ContainerDetails; c != nil {
		addContainers(ev, []container{*c})
	}
	if l := r.LambdaDetails; l != nil {
		addResource(ev, "AWS::Lambda::Function", l.FunctionArn, l.FunctionName, region, account)
		ev.AddObservable(ocsf.EntityRole, "resources.role", l.Role)
	}
	if d := r.RdsDbInstanceDetails; d != nil {
		addResource(ev, "AWS::RDS::DBInstance", d.DbInstanceArn, d.DbInstanceIdentifier, region, account)
	}
	if u := r.RdsDbUserDetails; u != nil && u.User != "" {
		ev.AddObservable(ocsf.EntityUser, "actor.user.name", u.User)
	}
}

func addContainers(ev *ocsf.Event, cs []container) {
	for i, c := range cs {
		if i == 0 {
			ev.Device.Container.UID = c.ID
			ev.Device.Container.Name = c.Name
			ev.Device.Container.Image.Name = c.Image
		}
		ev.AddObservable(ocsf.EntityContainer, "device.container.uid", c.ID)
	}
}

func mapAction(ev *ocsf.Event, s *service) {
	a := s.Action
	if a == nil {
		return
	}
	remote := func(d *ipDetails, ep *ocsf.NetworkEndpoint, name string) {
		if d == nil {
			return
		}
		ep.IP = d.ip()
		ep.Location.Country = d.Country.CountryName
		ep.Location.City = d.City.CityName
		if n, err := d.Organization.Asn.Int64(); err == nil {
			ep.AutonomousSystem.Number = int(n)
		}
		ep.AutonomousSystem.Name = d.Organization.AsnOrg
		ev.AddObservable(ocsf.EntityIP, name, ep.IP)
	}
	if c := a.AwsAPICallAction; c != nil {
		ev.API.Operation = c.API
		ev.API.Service.Name = c.ServiceName
		ev.API.Response.Error = c.ErrorCode
		ev.HTTPRequest.UserAgent = c.UserAgent
		remote(c.RemoteIPDetails, &ev.SrcEndpoint, "src_endpoint.ip")
		if c.DomainDetails != nil && c.DomainDetails.Domain != "" {
			ev.SrcEndpoint.Domain = c.DomainDetails.Domain
			ev.AddObservable(ocsf.EntityDomain, "src_endpoint.domain", c.DomainDetails.Domain)
		}
		if c.RemoteAccountDetails != nil {
			ev.AddObservable(ocsf.EntityAccount, "src_endpoint.account", c.RemoteAccountDetails.AccountID)
		}
		for typ, arn := range sortedPairs(c.AffectedResources) {
			addResource(ev, typ, arn, "", "", "")
			if typ == "AWS::IAM::Role" {
				ev.AddObservable(ocsf.EntityRole, "resources.uid", arn)
			}
		}
	}
	if c := a.NetworkConnectionAction; c != nil {
		local, remoteEP := &ev.DstEndpoint, &ev.SrcEndpoint
		localName, remoteName := "dst_endpoint.ip", "src_endpoint.ip"
		ev.ConnectionInfo.Direction, ev.ConnectionInfo.DirectionID = "Inbound", 1
		if c.ConnectionDirection == "OUTBOUND" {
			local, remoteEP = &ev.SrcEndpoint, &ev.DstEndpoint
			localName, remoteName = remoteName, localName
			ev.ConnectionInfo.Direction, ev.ConnectionInfo.DirectionID = "Outbound", 2
		}
		if c.LocalIPDetails != nil {
			local.IP = c.LocalIPDetails.ip()
			ev.AddObservable(ocsf.EntityIP, localName, local.IP)
		}
		if c.LocalPortDetails != nil {
			local.Port = port(c.LocalPortDetails)
		}
		remote(c.RemoteIPDetails, remoteEP, remoteName)
		if c.RemotePortDetails != nil {
			remoteEP.Port = port(c.RemotePortDetails)
		}
		ev.ConnectionInfo.ProtocolName = strings.ToLower(c.Protocol)
		if c.Blocked {
			ev.Disposition, ev.DispositionID = "Blocked", 2
		}
	}
	if d := a.DNSRequestAction; d != nil {
		ev.Query.Hostname = d.Domain
		ev.AddObservable(ocsf.EntityDomain, "query.hostname", d.Domain)
	}
	if p := a.PortProbeAction; p != nil {
		for i, d := range p.PortProbeDetails {
			if i == 0 {
				remote(d.RemoteIPDetails, &ev.SrcEndpoint, "src_endpoint.ip")
				if d.LocalPortDetails != nil {
					ev.DstEndpoint.Port = port(d.LocalPortDetails)
				}
			} else if d.RemoteIPDetails != nil {
				ev.AddObservable(ocsf.EntityIP, "src_endpoint.ip", d.RemoteIPDetails.ip())
			}
		}
	}
	if k := a.KubernetesAPICallAction; k != nil {
		ev.API.Operation = k.Verb
		ev.API.Service.Name = "kubernetes"
		ev.HTTPRequest.URL.Path = k.RequestURI
		ev.HTTPRequest.UserAgent = k.UserAgent
		remote(k.RemoteIPDetails, &ev.SrcEndpoint, "src_endpoint.ip")
		for _, ip := range k.SourceIPs {
			ev.AddObservable(ocsf.EntityIP, "src_endpoint.ip", ip)
		}
	}
	if r := a.RdsLoginAttemptAction; r != nil {
		remote(r.RemoteIPDetails, &ev.SrcEndpoint, "src_endpoint.ip")
	}
}

func port(p *portDetails) int {
	n, err := p.Port.Int64()
	if err != nil || n < 0 || n > 65535 {
		return 0
	}
	return int(n)
}

func num(n json.Number) int {
	v, err := n.Int64()
	if err != nil || v < -1<<31 || v > 1<<31-1 {
		return 0
	}
	return int(v)
}

func mapRuntime(ev *ocsf.Event, s *service) {
	rd := s.RuntimeDetails
	if rd == nil || rd.Process == nil {
		return
	}
	p := rd.Process
	pr := &ev.Actor.Process
	pr.Name = p.Name
	pr.PID = num(p.Pid)
	pr.UID = p.UUID
	pr.CWD = p.Pwd
	pr.File.Path = p.ExecutablePath
	pr.File.Name = baseName(p.ExecutablePath)
	if p.ExecutableSha256 != "" {
		pr.File.Hashes = []ocsf.Fingerprint{{Algorithm: "SHA-256", AlgorithmID: 3, Value: p.ExecutableSha256}}
		ev.AddObservable(ocsf.EntityHash, "actor.process.file.hashes.value", p.ExecutableSha256)
	}
	pr.User.Name = p.User
	pr.User.UID = p.UserID.String()
	pr.CreatedTime, _ = scan.TimeMillis(p.StartTime)
	ev.AddObservable(ocsf.EntityProcess, "actor.process.uid", p.UUID)
	ev.AddObservable(ocsf.EntityFile, "actor.process.file.path", p.ExecutablePath)
	ev.AddObservable(ocsf.EntityUser, "actor.process.user.name", p.User)
	deployments(ev, "actor.process.file.path", p.ExecutablePath)
	deployments(ev, "actor.process.cwd", p.Pwd)
	if ctx := rd.Context; ctx != nil {
		pr.CmdLine = ctx.CommandLineExample
		deployments(ev, "actor.process.cmd_line", ctx.CommandLineExample)
		if ctx.ScriptPath != "" {
			ev.File.Path = ctx.ScriptPath
			ev.File.Name = baseName(ctx.ScriptPath)
			ev.AddObservable(ocsf.EntityFile, "file.path", ctx.ScriptPath)
			deployments(ev, "file.path", ctx.ScriptPath)
		}
	}
	for i, l := range p.Lineage {
		if l.ExecutablePath != "" {
			pr.Lineage = append(pr.Lineage, l.ExecutablePath)
		}
		if i == 0 || l.UUID == p.ParentUUID {
			pr.Parent = ocsf.ParentProcess{PID: num(l.Pid), UID: l.UUID, Name: l.Name}
			pr.Parent.File.Path = l.ExecutablePath
			pr.Parent.File.Name = baseName(l.ExecutablePath)
		}
		deployments(ev, "actor.process.lineage", l.ExecutablePath)
	}
}

func deployments(ev *ocsf.Event, name, s string) {
	entity.Deployments(s, func(id string) { ev.AddObservable(ocsf.EntityDeployment, name, id) })
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func mapSequence(ev *ocsf.Event, sq *sequence) {
	fi := &ev.FindingInfo
	if sq.Description != "" && fi.Desc == "" {
		fi.Desc = sq.Description
	}
	for _, a := range sq.Actors {
		if a.Session != nil {
			ev.AddObservable(ocsf.EntitySession, "finding_info.actors.session.uid", a.Session.UID)
			if _, sess, ok := entity.SessionName(a.Session.UID); ok && entity.IsInstanceID(sess) {
				ev.AddObservable(ocsf.EntityInstance, "finding_info.actors.session.uid", sess)
			}
			ev.AddObservable(ocsf.EntityRole, "finding_info.actors.session.issuer", a.Session.Issuer)
		}
		if u := a.User; u != nil {
			ev.AddObservable(ocsf.EntityPrincipal, "finding_info.actors.user.uid", u.UID)
			ev.AddObservable(ocsf.EntityUser, "finding_info.actors.user.name", u.Name)
			ev.AddObservable(ocsf.EntityAccessKey, "finding_info.actors.user.credential_uid", u.CredentialUID)
			if u.Account != nil {
				ev.AddObservable(ocsf.EntityAccount, "finding_info.actors.user.account.uid", u.Account.UID)
			}
		}
	}
	for _, r := range sq.Resources {
		addResource(ev, r.ResourceType, r.UID, r.Name, r.Region, r.AccountID)
		switch r.ResourceType {
		case "AWS::S3::Bucket", "S3Bucket":
			ev.AddObservable(ocsf.EntityBucket, "resources.name", r.Name)
		case "AWS::EC2::Instance", "Instance":
			ev.AddObservable(ocsf.EntityInstance, "resources.name", r.Name)
		case "AWS::IAM::Role":
			ev.AddObservable(ocsf.EntityRole, "resources.uid", r.UID)
		case "AccessKey":
			ev.AddObservable(ocsf.EntityAccessKey, "resources.uid", r.UID)
		}
	}
	for _, e := range sq.Endpoints {
		ev.AddObservable(ocsf.EntityIP, "finding_info.endpoints.ip", e.IP)
		ev.AddObservable(ocsf.EntityDomain, "finding_info.endpoints.domain", e.Domain)
	}
	for _, s := range sq.Signals {
		re := ocsf.RelatedEvent{UID: s.UID, Type: s.Type, ProductUID: s.Name, Desc: s.Description}
		re.FirstSeen = timeValue(s.FirstSeenAt)
		re.LastSeen = timeValue(s.LastSeenAt)
		fi.RelatedEvents = append(fi.RelatedEvents, re)
	}
	for _, ind := range sq.SequenceIndicators {
		switch ind.Key {
		case "ATTACK_TACTIC":
			for _, v := range ind.Values {
				fi.Attacks = append(fi.Attacks, ocsf.Attack{Tactic: ocsf.AttackRef{Name: v}})
			}
		case "ATTACK_TECHNIQUE":
			for _, v := range ind.Values {
				fi.Attacks = append(fi.Attacks, ocsf.Attack{Technique: ocsf.AttackRef{Name: v}})
			}
		}
	}
}

// timeValue reads a signal time: epoch milliseconds (a number) or a
// timestamp string.
func timeValue(raw json.RawMessage) int64 {
	if len(raw) == 0 {
		return 0
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			t, _ := scan.TimeMillis(s)
			return t
		}
		return 0
	}
	n, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || n < 0 || n > 1e16 {
		return 0
	}
	if n < 1e11 { // seconds
		n *= 1000
	}
	return int64(n)
}

func unmapped(f *finding) []byte {
	u := struct {
		Severity       json.Number     `json:"severity,omitempty"`
		Partition      string          `json:"partition,omitempty"`
		DetectorID     string          `json:"detectorId,omitempty"`
		ResourceType   string          `json:"resourceType,omitempty"`
		ResourceRole   string          `json:"resourceRole,omitempty"`
		Count          json.Number     `json:"count,omitempty"`
		AdditionalInfo json.RawMessage `json:"additionalInfo,omitempty"`
		Evidence       json.RawMessage `json:"evidence,omitempty"`
	}{f.Severity, f.Partition, f.Service.DetectorID, f.Resource.ResourceType, f.Service.ResourceRole, f.Service.Count, nonEmpty(f.Service.AdditionalInfo), nonEmpty(f.Service.Evidence)}
	b, err := json.Marshal(u)
	if err != nil {
		return nil
	}
	return b
}

func nonEmpty(r json.RawMessage) json.RawMessage {
	if len(r) == 0 || string(r) == "null" || string(r) == "{}" {
		return nil
	}
	return r
}

// sortedPairs iterates a map in key order, so events are deterministic.
func sortedPairs(m map[string]string) func(func(string, string) bool) {
	return func(yield func(string, string) bool) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}
