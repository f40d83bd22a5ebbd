// Package inspector normalizes Amazon Inspector findings, as EventBridge
// delivers them ("Inspector2 Finding"), to OCSF Vulnerability Finding
// (2002): package vulnerabilities (CVE, CVSS, exploit and fix
// availability, the affected packages), network reachability (open ports
// reachable through an internet gateway) and code vulnerabilities, on EC2
// instances, ECR images and Lambda functions.
//
// NormalizeTo reads either the whole EventBridge event or its detail.
// Inspector writes its times as "Mar 31, 2022, 6:02:56 PM" (UTC) in
// EventBridge events and as RFC 3339 in its API; both are read. The
// scanned instance is the device (device.ip its first public address, else
// its first address), so rules can ask whether the vulnerable host faces
// the internet.
package inspector

import (
	"encoding/json"
	"net/netip"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/ingest/internal/scan"
	"github.com/musubi-xdr/musubi/ocsf"
)

// LogName is metadata.log_name of Inspector events.
const LogName = "inspector"

type envelope struct {
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Account    string          `json:"account"`
	Region     string          `json:"region"`
	Time       string          `json:"time"`
	Detail     json.RawMessage `json:"detail"`
}

type finding struct {
	AWSAccountID     string  `json:"awsAccountId"`
	Description      string  `json:"description"`
	ExploitAvailable string  `json:"exploitAvailable"`
	FixAvailable     string  `json:"fixAvailable"`
	FindingARN       string  `json:"findingArn"`
	FirstObservedAt  string  `json:"firstObservedAt"`
	LastObservedAt   string  `json:"lastObservedAt"`
	UpdatedAt        string  `json:"updatedAt"`
	InspectorScore   float64 `json:"inspectorScore"`
	Severity         string  `json:"severity"`
	Status           string  `json:"status"`
	Title            string  `json:"title"`
	Type             string  `json:"type"`
	Resources        []struct {
		ID      string            `json:"id"`
		Type    string            `json:"type"`
		Region  string            `json:"region"`
		Tags    map[string]string `json:"tags"`
		Details struct {
			AWSEC2Instance *struct {
				IPv4Addresses         []string `json:"ipV4Addresses"`
				IAMInstanceProfileARN string   `json:"iamInstanceProfileArn"`
				ImageID               string   `json:"imageId"`
			} `json:"awsEc2Instance"`
			AWSECRContainerImage *struct {
				RepositoryName string   `json:"repositoryName"`
				ImageHash      string   `json:"imageHash"`
				ImageTags      []string `json:"imageTags"`
			} `json:"awsEcrContainerImage"`
			AWSLambdaFunction *struct {
				FunctionName     string `json:"functionName"`
				ExecutionRoleARN string `json:"executionRoleArn"`
			} `json:"awsLambdaFunction"`
		} `json:"details"`
	} `json:"resources"`
	PackageVulnerabilityDetails *struct {
		VulnerabilityID string `json:"vulnerabilityId"`
		CVSS            []struct {
			BaseScore     float64 `json:"baseScore"`
			ScoringVector string  `json:"scoringVector"`
			Version       string  `json:"version"`
		} `json:"cvss"`
		VulnerablePackages []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"vulnerablePackages"`
		ReferenceURLs []string `json:"referenceUrls"`
	} `json:"packageVulnerabilityDetails"`
	NetworkReachabilityDetails *struct {
		OpenPortRange struct {
			Begin int `json:"begin"`
			End   int `json:"end"`
		} `json:"openPortRange"`
		Protocol    string `json:"protocol"`
		NetworkPath struct {
			Steps []struct {
				ComponentID   string `json:"componentId"`
				ComponentType string `json:"componentType"`
			} `json:"steps"`
		} `json:"networkPath"`
	} `json:"networkReachabilityDetails"`
}

// severities maps Inspector's severity labels to OCSF severity ids.
var severities = map[string]int{
	"INFORMATIONAL": ocsf.SeverityInformational, "LOW": ocsf.SeverityLow, "MEDIUM": ocsf.SeverityMedium,
	"HIGH": ocsf.SeverityHigh, "CRITICAL": ocsf.SeverityCritical, "UNTRIAGED": ocsf.SeverityUnknown,
}

// TimeMillis parses an Inspector timestamp: RFC 3339 or the EventBridge
// form "Jan 2, 2006, 3:04:05 PM" (UTC).
func TimeMillis(s string) (int64, bool) {
	if ms, ok := scan.TimeMillis(s); ok {
		return ms, true
	}
	t, err := time.Parse("Jan 2, 2006, 3:04:05 PM", s)
	if err != nil {
		return 0, false
	}
	return t.UnixMilli(), true
}

// NormalizeTo maps one Inspector finding (an EventBridge event or its
// detail) to an OCSF Vulnerability Finding in *ev.
func NormalizeTo(ev *ocsf.Event, rec []byte, depth int) error {
	if err := scan.Validate(rec, depth); err != nil {
		return err
	}
	var env envelope
	if err := json.Unmarshal(rec, &env); err != nil {
		return err
	}
	body := rec
	if env.Detail != nil {
		if env.DetailType != "" && env.DetailType != "Inspector2 Finding" {
			return scan.Errorf(scan.ReasonUnsupported, "EventBridge detail-type "+env.DetailType+" is not an Inspector finding")
		}
		body = env.Detail
	}
	var f finding
	if err := json.Unmarshal(body, &f); err != nil {
		return scan.Plain(err)
	}
	if f.FindingARN == "" || f.Type == "" {
		return scan.Errorf(scan.ReasonMissingField, "an Inspector finding needs findingArn and type")
	}
	if len(f.Resources) == 0 {
		return scan.Errorf(scan.ReasonMissingField, "an Inspector finding needs a resource")
	}
	t, ok := TimeMillis(f.UpdatedAt)
	if !ok {
		if t, ok = TimeMillis(env.Time); !ok {
			if t, ok = TimeMillis(f.LastObservedAt); !ok {
				return scan.Errorf(scan.ReasonInvalidValue, "an Inspector finding needs updatedAt, lastObservedAt or the event time as a timestamp")
			}
		}
	}
	sev, ok := severities[strings.ToUpper(f.Severity)]
	if !ok {
		return scan.Errorf(scan.ReasonInvalidValue, "severity "+f.Severity+" is not an Inspector severity")
	}
	account := f.AWSAccountID
	if account == "" {
		account = env.Account
	}
	*ev = ocsf.Event{}
	act, actName := 1, "Create"
	first, _ := TimeMillis(f.FirstObservedAt)
	switch {
	case strings.EqualFold(f.Status, "CLOSED"):
		act, actName = 3, "Close"
	case first != 0 && t > first:
		act, actName = 2, "Update"
	}
	ev.SetClass(ocsf.ClassVulnerabilityFinding, act, actName)
	ev.Raw = rec[:len(rec):len(rec)]
	ev.Time = t
	ev.SeverityID, ev.Severity = sev, ocsf.SeverityName(sev)
	ev.Status = f.Status
	ev.Message = f.Title
	ev.Metadata = ocsf.Metadata{Version: ocsf.Version, LogName: LogName, LogProvider: "Amazon Inspector", EventCode: f.Type, UID: f.FindingARN + ":" + f.UpdatedAt}
	ev.Metadata.Product.Name, ev.Metadata.Product.VendorName = "Amazon Inspector", "AWS"
	ev.FindingInfo = ocsf.FindingInfo{UID: f.FindingARN, Title: f.Title, Desc: f.Description, Types: []string{f.Type}, FirstSeen: first, ModifiedTime: t, ProductUID: f.FindingARN}
	ev.FindingInfo.LastSeen, _ = TimeMillis(f.LastObservedAt)
	ev.RiskScore = int(f.InspectorScore * 10)
	region := env.Region
	ev.AddObservable(ocsf.EntityFinding, "finding_info.uid", f.FindingARN)
	ev.AddObservable(ocsf.EntityAccount, "cloud.account.uid", account)
	for _, r := range f.Resources {
		if region == "" {
			region = r.Region
		}
		res := ocsf.Resource{UID: r.ID, Type: r.Type, Region: r.Region}
		res.Owner.Account.UID = account
		d := r.Details
		switch {
		case d.AWSEC2Instance != nil:
			ev.Device = ocsf.Device{UID: r.ID, InstanceUID: r.ID, Name: r.Tags["Name"], IP: pickIP(d.AWSEC2Instance.IPv4Addresses), Type: "Virtual", TypeID: 6, Region: r.Region}
			ev.AddObservable(ocsf.EntityInstance, "device.instance_uid", r.ID)
			for _, ip := range d.AWSEC2Instance.IPv4Addresses {
				ev.AddObservable(ocsf.EntityIP, "resources.details.awsEc2Instance.ipV4Addresses", ip)
			}
		case d.AWSECRContainerImage != nil:
			res.Name = d.AWSECRContainerImage.RepositoryName
			ev.AddObservable(ocsf.EntityHash, "resources.details.awsEcrContainerImage.imageHash", d.AWSECRContainerImage.ImageHash)
		case d.AWSLambdaFunction != nil:
			res.Name = d.AWSLambdaFunction.FunctionName
			ev.AddObservable(ocsf.EntityRole, "resources.details.awsLambdaFunction.executionRoleArn", d.AWSLambdaFunction.ExecutionRoleARN)
		case strings.HasPrefix(r.ID, "i-"):
			ev.Device = ocsf.Device{UID: r.ID, InstanceUID: r.ID, Type: "Virtual", TypeID: 6, Region: r.Region}
			ev.AddObservable(ocsf.EntityInstance, "device.instance_uid", r.ID)
		}
		ev.Resources = append(ev.Resources, res)
	}
	ev.Cloud = ocsf.Cloud{Provider: "AWS", Region: region, Account: ocsf.Account{UID: account}}
	ev.AddObservable(ocsf.EntityRegion, "cloud.region", region)
	v := ocsf.Vulnerability{
		Title: f.Title, Severity: f.Severity,
		IsExploitAvailable: strings.EqualFold(f.ExploitAvailable, "YES"),
		IsFixAvailable:     strings.EqualFold(f.FixAvailable, "YES"),
	}
	if p := f.PackageVulnerabilityDetails; p != nil {
		v.CVE.UID = p.VulnerabilityID
		for _, c := range p.CVSS {
			v.CVE.CVSS = append(v.CVE.CVSS, ocsf.CVSS{BaseScore: c.BaseScore, VectorString: c.ScoringVector, Version: c.Version})
		}
		for _, pk := range p.VulnerablePackages {
			v.Packages = append(v.Packages, pk.Name+"@"+pk.Version)
		}
		v.References = p.ReferenceURLs
	}
	if n := f.NetworkReachabilityDetails; n != nil {
		for _, s := range n.NetworkPath.Steps {
			if s.ComponentType == "AWS::EC2::InternetGateway" {
				ev.FindingInfo.Types = append(ev.FindingInfo.Types, "internet_reachable")
				break
			}
		}
	}
	ev.Vulnerabilities = []ocsf.Vulnerability{v}
	return nil
}

// pickIP returns the first public address, else the first address.
func pickIP(ips []string) string {
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil && !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() {
			return s
		}
	}
	if len(ips) > 0 {
		return ips[0]
	}
	return ""
}
