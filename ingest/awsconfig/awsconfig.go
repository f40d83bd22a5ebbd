// Package awsconfig reads AWS Config configuration items: the asset
// inventory behind Musubi's exposure analysis (package exposure).
//
// Config delivers items three ways, all read here: snapshot and history
// files in S3 ({"fileVersion":…, "configurationItems":[…]}), EventBridge
// "Configuration Item Change Notification" events (the item is
// detail.configurationItem) and single items as the Config API returns them
// (where configuration and supplementaryConfiguration values may be JSON
// written into strings). Parse decodes bytes into typed Items; NormalizeTo
// maps one item to an OCSF Inventory Info (5001) event for `musubi
// normalize`, `replay` and the events table.
//
// The types read in detail are EC2 instances (public address, IMDS
// httpTokens, instance profile, security groups), security groups (ingress
// open to 0.0.0.0/0 or ::/0), IAM roles (inline policies, attached policy
// ARNs, instance profiles) and customer managed policies (default version),
// S3 buckets (versioning, Object Lock, public access block, bucket policy,
// from supplementaryConfiguration), CodePipeline pipelines (stages and
// actions) and CodeDeploy deployment groups (targets). IAM policy documents
// arrive URL-encoded, as Config writes them, or as plain JSON. Items of other
// types keep their identity and tags.
//
// Items are low-volume, so this package uses encoding/json into typed
// structs (never map[string]any on the item's configuration); the ingest
// package has validated depth and UTF-8 before NormalizeTo.
package awsconfig

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/musubi-xdr/musubi/ingest/internal/scan"
	"github.com/musubi-xdr/musubi/ocsf"
)

// LogName is metadata.log_name of the events of this source.
const LogName = "awsconfig"

// rawItem is a configuration item as Config writes it.
type rawItem struct {
	AccountID                    string                     `json:"accountId"`
	AWSAccountID                 string                     `json:"awsAccountId"`
	ConfigurationItemCaptureTime string                     `json:"configurationItemCaptureTime"`
	ConfigurationItemStatus      string                     `json:"configurationItemStatus"`
	ConfigurationStateID         json.RawMessage            `json:"configurationStateId"`
	ARN                          string                     `json:"arn"`
	ResourceType                 string                     `json:"resourceType"`
	ResourceID                   string                     `json:"resourceId"`
	ResourceName                 string                     `json:"resourceName"`
	AWSRegion                    string                     `json:"awsRegion"`
	Tags                         map[string]string          `json:"tags"`
	Configuration                json.RawMessage            `json:"configuration"`
	SupplementaryConfiguration   map[string]json.RawMessage `json:"supplementaryConfiguration"`
}

// notification is the detail of a change notification (or the whole
// EventBridge event, whose detail it is).
type notification struct {
	Detail                   json.RawMessage `json:"detail"`
	MessageType              string          `json:"messageType"`
	ConfigurationItem        json.RawMessage `json:"configurationItem"`
	ConfigurationItemSummary json.RawMessage `json:"configurationItemSummary"`
}

// file is a snapshot or history file.
type file struct {
	ConfigurationItems []json.RawMessage `json:"configurationItems"`
}

// Parse decodes a snapshot or history file, a change notification (the
// EventBridge event or its detail), a JSON array of items or one item.
// It returns the items that decoded and an error joining one error per item
// that did not (with its index); it never panics.
func Parse(data []byte) ([]Item, error) {
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return nil, scan.Errorf(scan.ReasonInvalidJSON, "empty input")
	}
	var recs []json.RawMessage
	if t[0] == '[' {
		if err := json.Unmarshal(t, &recs); err != nil {
			return nil, err
		}
	} else {
		var probe struct {
			ConfigurationItems json.RawMessage `json:"configurationItems"`
			Detail             json.RawMessage `json:"detail"`
		}
		if err := json.Unmarshal(t, &probe); err != nil {
			return nil, err
		}
		switch {
		case probe.ConfigurationItems != nil:
			var f file
			if err := json.Unmarshal(t, &f); err != nil {
				return nil, err
			}
			recs = f.ConfigurationItems
		case probe.Detail != nil:
			recs = []json.RawMessage{probe.Detail}
		default:
			recs = []json.RawMessage{t}
		}
	}
	items := make([]Item, 0, len(recs))
	var errs []error
	for i, r := range recs {
		it, err := ParseItem(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("item %d: %w", i, err))
			continue
		}
		items = append(items, it)
	}
	return items, errors.Join(errs...)
}

// ParseItem decodes one configuration item, or the detail of a change
// notification that holds one.
func ParseItem(rec []byte) (Item, error) {
	var n notification
	if err := json.Unmarshal(rec, &n); err != nil {
		return Item{}, err
	}
	if d := bytes.TrimSpace(n.Detail); len(d) > 0 && d[0] == '{' {
		// The whole EventBridge event: read its detail.
		rec, n = d, notification{}
		if err := json.Unmarshal(rec, &n); err != nil {
			return Item{}, err
		}
	}
	switch {
	case n.ConfigurationItem != nil && string(n.ConfigurationItem) != "null":
		rec = n.ConfigurationItem
	case n.ConfigurationItemSummary != nil:
		return Item{}, scan.Errorf(scan.ReasonUnsupported, "an oversized configuration item notification carries only a summary: read the item from its S3 delivery")
	case n.MessageType != "":
		return Item{}, scan.Errorf(scan.ReasonUnsupported, "Config message type "+n.MessageType+" carries no configuration item")
	}
	var r rawItem
	if err := json.Unmarshal(rec, &r); err != nil {
		return Item{}, err
	}
	it := Item{
		Account:      firstOf(r.AccountID, r.AWSAccountID),
		Region:       r.AWSRegion,
		ResourceType: r.ResourceType,
		ResourceID:   r.ResourceID,
		ResourceName: r.ResourceName,
		ARN:          r.ARN,
		Status:       r.ConfigurationItemStatus,
		StateID:      strings.Trim(string(r.ConfigurationStateID), `"`),
		Tags:         r.Tags,
	}
	if it.Account == "" || it.ResourceType == "" || it.ResourceID == "" {
		return Item{}, scan.Errorf(scan.ReasonMissingField, "a configuration item needs accountId, resourceType and resourceId")
	}
	if !validAccount(it.Account) {
		return Item{}, scan.Errorf(scan.ReasonInvalidValue, "accountId "+quote(it.Account)+" is not a 12-digit AWS account id")
	}
	ms, ok := scan.TimeMillis(r.ConfigurationItemCaptureTime)
	if !ok {
		return Item{}, scan.Errorf(scan.ReasonInvalidValue, "configurationItemCaptureTime "+quote(r.ConfigurationItemCaptureTime)+" is not a timestamp")
	}
	it.CaptureTime = ms
	if it.Deleted() {
		return it, nil // a deletion carries no configuration
	}
	conf, err := unquote(r.Configuration)
	if err != nil {
		return Item{}, fmt.Errorf("configuration: %w", err)
	}
	if conf == nil {
		return it, nil
	}
	switch it.ResourceType {
	case TypeInstance:
		it.Instance, err = parseInstance(conf)
	case TypeSecurityGroup:
		it.SecurityGroup, err = parseSecurityGroup(conf)
	case TypeRole:
		it.Role, err = parseRole(conf)
	case TypePolicy:
		it.Policy, err = parsePolicy(conf)
	case TypeBucket:
		it.Bucket, err = parseBucket(r.SupplementaryConfiguration)
	case TypePipeline:
		it.Pipeline, err = parsePipeline(conf)
	case TypeDeploymentGroup:
		it.DeploymentGroup, err = parseDeploymentGroup(conf)
	}
	if err != nil {
		return Item{}, fmt.Errorf("%s %s: %w", it.ResourceType, quote(it.ResourceID), scan.Plain(err))
	}
	return it, nil
}

// unquote returns the JSON value v, decoding it first when Config wrote it
// into a string (the API's form); null and absent give nil.
func unquote(v json.RawMessage) (json.RawMessage, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	if v[0] != '"' {
		return v, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, err
	}
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return nil, nil
	}
	if !json.Valid([]byte(s)) {
		return nil, scan.Errorf(scan.ReasonInvalidJSON, "a string that should hold JSON does not")
	}
	return json.RawMessage(s), nil
}

// strList reads a JSON string or array of strings.
type strList []string

func (l *strList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = []string{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return scan.Errorf(scan.ReasonWrongType, "want a string or an array of strings")
	}
	*l = ss
	return nil
}

func parseInstance(conf []byte) (*Instance, error) {
	var c struct {
		PublicIPAddress    string `json:"publicIpAddress"`
		PrivateIPAddress   string `json:"privateIpAddress"`
		ImageID            string `json:"imageId"`
		IAMInstanceProfile *struct {
			ARN string `json:"arn"`
		} `json:"iamInstanceProfile"`
		SecurityGroups []struct {
			GroupID string `json:"groupId"`
		} `json:"securityGroups"`
		MetadataOptions *struct {
			HTTPTokens   string `json:"httpTokens"`
			HTTPEndpoint string `json:"httpEndpoint"`
		} `json:"metadataOptions"`
		State *struct {
			Name string `json:"name"`
		} `json:"state"`
	}
	if err := json.Unmarshal(conf, &c); err != nil {
		return nil, err
	}
	in := &Instance{PublicIP: c.PublicIPAddress, PrivateIP: c.PrivateIPAddress, ImageID: c.ImageID}
	if c.IAMInstanceProfile != nil {
		in.InstanceProfileARN = c.IAMInstanceProfile.ARN
	}
	for _, g := range c.SecurityGroups {
		if g.GroupID != "" {
			in.SecurityGroups = append(in.SecurityGroups, g.GroupID)
		}
	}
	if m := c.MetadataOptions; m != nil {
		in.HTTPTokens, in.HTTPEndpoint = strings.ToLower(m.HTTPTokens), strings.ToLower(m.HTTPEndpoint)
		if in.HTTPTokens != "" && in.HTTPTokens != "required" && in.HTTPTokens != "optional" {
			return nil, scan.Errorf(scan.ReasonInvalidValue, "metadataOptions.httpTokens "+quote(m.HTTPTokens)+" is neither required nor optional")
		}
	}
	if c.State != nil {
		in.State = c.State.Name
	}
	return in, nil
}

func parseSecurityGroup(conf []byte) (*SecurityGroup, error) {
	var c struct {
		GroupName     string `json:"groupName"`
		VPCID         string `json:"vpcId"`
		IPPermissions []struct {
			FromPort   *int     `json:"fromPort"`
			ToPort     *int     `json:"toPort"`
			IPProtocol string   `json:"ipProtocol"`
			IPRanges   []string `json:"ipRanges"`
			IPv4Ranges []struct {
				CIDRIP string `json:"cidrIp"`
			} `json:"ipv4Ranges"`
			IPv6Ranges []struct {
				CIDRIPv6 string `json:"cidrIpv6"`
			} `json:"ipv6Ranges"`
		} `json:"ipPermissions"`
	}
	if err := json.Unmarshal(conf, &c); err != nil {
		return nil, err
	}
	sg := &SecurityGroup{GroupName: c.GroupName, VPCID: c.VPCID}
	for _, p := range c.IPPermissions {
		cidrs := append([]string(nil), p.IPRanges...)
		for _, r := range p.IPv4Ranges {
			cidrs = append(cidrs, r.CIDRIP)
		}
		for _, r := range p.IPv6Ranges {
			cidrs = append(cidrs, r.CIDRIPv6)
		}
		from, to := 0, 65535
		if p.FromPort != nil && *p.FromPort >= 0 {
			from = *p.FromPort
		}
		if p.ToPort != nil && *p.ToPort >= 0 {
			to = *p.ToPort
		}
		seen := map[string]bool{}
		for _, cidr := range cidrs {
			if (cidr == "0.0.0.0/0" || cidr == "::/0") && !seen[cidr] {
				seen[cidr] = true
				sg.OpenIngress = append(sg.OpenIngress, PortRange{Protocol: p.IPProtocol, FromPort: from, ToPort: to, CIDR: cidr})
			}
		}
	}
	return sg, nil
}

func parseRole(conf []byte) (*Role, error) {
	var c struct {
		RoleName                 string          `json:"roleName"`
		AssumeRolePolicyDocument json.RawMessage `json:"assumeRolePolicyDocument"`
		InstanceProfileList      []struct {
			ARN string `json:"arn"`
		} `json:"instanceProfileList"`
		RolePolicyList []struct {
			PolicyName     string          `json:"policyName"`
			PolicyDocument json.RawMessage `json:"policyDocument"`
		} `json:"rolePolicyList"`
		AttachedManagedPolicies []struct {
			PolicyARN string `json:"policyArn"`
		} `json:"attachedManagedPolicies"`
		PermissionsBoundary *struct {
			PermissionsBoundaryARN string `json:"permissionsBoundaryArn"`
		} `json:"permissionsBoundary"`
	}
	if err := json.Unmarshal(conf, &c); err != nil {
		return nil, err
	}
	r := &Role{RoleName: c.RoleName}
	var err error
	if r.TrustPolicy, err = ParsePolicyDocument(c.AssumeRolePolicyDocument); err != nil {
		return nil, fmt.Errorf("assumeRolePolicyDocument: %w", err)
	}
	for _, p := range c.InstanceProfileList {
		r.InstanceProfiles = append(r.InstanceProfiles, p.ARN)
	}
	for _, p := range c.RolePolicyList {
		doc, err := ParsePolicyDocument(p.PolicyDocument)
		if err != nil {
			return nil, fmt.Errorf("inline policy %s: %w", quote(p.PolicyName), err)
		}
		r.InlinePolicies = append(r.InlinePolicies, NamedPolicy{Name: p.PolicyName, Document: doc})
	}
	for _, p := range c.AttachedManagedPolicies {
		r.AttachedPolicies = append(r.AttachedPolicies, p.PolicyARN)
	}
	if c.PermissionsBoundary != nil {
		r.PermissionsBoundary = c.PermissionsBoundary.PermissionsBoundaryARN
	}
	return r, nil
}

func parsePolicy(conf []byte) (*ManagedPolicy, error) {
	var c struct {
		PolicyName        string `json:"policyName"`
		DefaultVersionID  string `json:"defaultVersionId"`
		PolicyVersionList []struct {
			Document         json.RawMessage `json:"document"`
			VersionID        string          `json:"versionId"`
			IsDefaultVersion bool            `json:"isDefaultVersion"`
		} `json:"policyVersionList"`
	}
	if err := json.Unmarshal(conf, &c); err != nil {
		return nil, err
	}
	p := &ManagedPolicy{PolicyName: c.PolicyName, DefaultVersion: c.DefaultVersionID}
	for _, v := range c.PolicyVersionList {
		if v.IsDefaultVersion || (c.DefaultVersionID != "" && v.VersionID == c.DefaultVersionID) {
			doc, err := ParsePolicyDocument(v.Document)
			if err != nil {
				return nil, fmt.Errorf("policy version %s: %w", quote(v.VersionID), err)
			}
			p.Document, p.DefaultVersion = doc, v.VersionID
			return p, nil
		}
	}
	return p, nil
}

func parseBucket(sup map[string]json.RawMessage) (*Bucket, error) {
	b := &Bucket{}
	get := func(keys ...string) (json.RawMessage, error) {
		for _, k := range keys {
			if v, ok := sup[k]; ok {
				out, err := unquote(v)
				if err != nil {
					return nil, fmt.Errorf("supplementaryConfiguration.%s: %w", k, err)
				}
				return out, nil
			}
		}
		return nil, nil
	}
	if v, err := get("BucketVersioningConfiguration"); err != nil {
		return nil, err
	} else if v != nil {
		var c struct {
			Status             string `json:"status"`
			IsMFADeleteEnabled *bool  `json:"isMfaDeleteEnabled"`
		}
		if err := json.Unmarshal(v, &c); err != nil {
			return nil, fmt.Errorf("BucketVersioningConfiguration: %w", err)
		}
		b.Versioning = c.Status
		b.MFADelete = c.IsMFADeleteEnabled != nil && *c.IsMFADeleteEnabled
	}
	if v, err := get("ObjectLockConfiguration", "BucketObjectLockConfiguration"); err != nil {
		return nil, err
	} else if v != nil {
		var c struct {
			ObjectLockEnabled string `json:"objectLockEnabled"`
		}
		if err := json.Unmarshal(v, &c); err != nil {
			return nil, fmt.Errorf("ObjectLockConfiguration: %w", err)
		}
		b.ObjectLock = strings.EqualFold(c.ObjectLockEnabled, "Enabled")
	}
	if v, err := get("PublicAccessBlockConfiguration"); err != nil {
		return nil, err
	} else if v != nil {
		var c PublicAccessBlock
		var raw struct {
			BlockPublicACLs       bool `json:"blockPublicAcls"`
			IgnorePublicACLs      bool `json:"ignorePublicAcls"`
			BlockPublicPolicy     bool `json:"blockPublicPolicy"`
			RestrictPublicBuckets bool `json:"restrictPublicBuckets"`
		}
		if err := json.Unmarshal(v, &raw); err != nil {
			return nil, fmt.Errorf("PublicAccessBlockConfiguration: %w", err)
		}
		c = PublicAccessBlock(raw)
		b.PublicAccessBlock = &c
	}
	if v, err := get("BucketPolicy"); err != nil {
		return nil, err
	} else if v != nil {
		var c struct {
			PolicyText json.RawMessage `json:"policyText"`
		}
		if err := json.Unmarshal(v, &c); err != nil {
			return nil, fmt.Errorf("BucketPolicy: %w", err)
		}
		doc, err := ParsePolicyDocument(c.PolicyText)
		if err != nil {
			return nil, fmt.Errorf("BucketPolicy.policyText: %w", err)
		}
		b.Policy = doc
	}
	return b, nil
}

func parsePipeline(conf []byte) (*Pipeline, error) {
	type rawPipeline struct {
		Name    string `json:"name"`
		RoleARN string `json:"roleArn"`
		Stages  []struct {
			Name    string `json:"name"`
			Actions []struct {
				Name         string `json:"name"`
				ActionTypeID struct {
					Category string `json:"category"`
					Owner    string `json:"owner"`
					Provider string `json:"provider"`
				} `json:"actionTypeId"`
				Configuration map[string]json.RawMessage `json:"configuration"`
			} `json:"actions"`
		} `json:"stages"`
	}
	var c struct {
		Pipeline *rawPipeline `json:"pipeline"`
		rawPipeline
	}
	if err := json.Unmarshal(conf, &c); err != nil {
		return nil, err
	}
	rp := &c.rawPipeline
	if c.Pipeline != nil {
		rp = c.Pipeline
	}
	if rp.Name == "" {
		return nil, scan.Errorf(scan.ReasonMissingField, "a pipeline needs a name")
	}
	p := &Pipeline{Name: rp.Name, RoleARN: rp.RoleARN}
	for _, s := range rp.Stages {
		st := Stage{Name: s.Name}
		for _, a := range s.Actions {
			str := func(k string) string {
				var v string
				_ = json.Unmarshal(a.Configuration[k], &v) // a non-string value reads as absent
				return v
			}
			st.Actions = append(st.Actions, Action{
				Name: a.Name, Category: a.ActionTypeID.Category, Owner: a.ActionTypeID.Owner, Provider: a.ActionTypeID.Provider,
				S3Bucket: str("S3Bucket"), S3ObjectKey: str("S3ObjectKey"),
				ApplicationName: str("ApplicationName"), DeploymentGroupName: str("DeploymentGroupName"),
			})
		}
		p.Stages = append(p.Stages, st)
	}
	return p, nil
}

func parseDeploymentGroup(conf []byte) (*DeploymentGroup, error) {
	type filter struct {
		Key   string `json:"key"`
		Value string `json:"value"`
		Type  string `json:"type"`
	}
	var c struct {
		ApplicationName     string          `json:"applicationName"`
		DeploymentGroupName string          `json:"deploymentGroupName"`
		ServiceRoleARN      string          `json:"serviceRoleArn"`
		EC2TagFilters       []filter        `json:"ec2TagFilters"`
		EC2TagSet           json.RawMessage `json:"ec2TagSet"`
		AutoScalingGroups   json.RawMessage `json:"autoScalingGroups"`
	}
	if err := json.Unmarshal(conf, &c); err != nil {
		return nil, err
	}
	if c.DeploymentGroupName == "" {
		return nil, scan.Errorf(scan.ReasonMissingField, "a deployment group needs deploymentGroupName")
	}
	g := &DeploymentGroup{ApplicationName: c.ApplicationName, DeploymentGroupName: c.DeploymentGroupName, ServiceRoleARN: c.ServiceRoleARN}
	for _, f := range c.EC2TagFilters {
		g.TagFilters = append(g.TagFilters, TagFilter(f))
	}
	if len(c.EC2TagSet) > 0 && string(c.EC2TagSet) != "null" {
		var set struct {
			EC2TagSetList [][]filter `json:"ec2TagSetList"`
		}
		if err := json.Unmarshal(c.EC2TagSet, &set); err != nil {
			return nil, fmt.Errorf("ec2TagSet: %w", err)
		}
		for _, l := range set.EC2TagSetList {
			for _, f := range l {
				g.TagFilters = append(g.TagFilters, TagFilter(f))
			}
		}
	}
	if len(c.AutoScalingGroups) > 0 && string(c.AutoScalingGroups) != "null" {
		// Either names or {name, hook} objects.
		var names []string
		if err := json.Unmarshal(c.AutoScalingGroups, &names); err != nil {
			names = nil // a failed decode may leave partial elements
			var objs []struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(c.AutoScalingGroups, &objs); err != nil {
				return nil, fmt.Errorf("autoScalingGroups: %w", err)
			}
			for _, o := range objs {
				names = append(names, o.Name)
			}
		}
		g.AutoScalingGroups = names
	}
	return g, nil
}

// ParsePolicyDocument decodes an IAM policy document: URL-encoded JSON (as
// Config writes IAM documents), JSON in a string, or a JSON object. Null or
// absent gives the zero document.
func ParsePolicyDocument(v json.RawMessage) (PolicyDocument, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return PolicyDocument{}, nil
	}
	if v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return PolicyDocument{}, err
		}
		s = strings.TrimSpace(s)
		if s == "" || s == "null" {
			return PolicyDocument{}, nil
		}
		if !strings.HasPrefix(s, "{") {
			u, err := url.QueryUnescape(s)
			if err != nil {
				return PolicyDocument{}, scan.Errorf(scan.ReasonInvalidValue, "policy document is neither JSON nor URL-encoded JSON")
			}
			s = u
		}
		v = json.RawMessage(s)
	}
	var raw struct {
		Version   string          `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal(v, &raw); err != nil {
		return PolicyDocument{}, scan.Errorf(scan.ReasonInvalidJSON, "policy document: "+err.Error())
	}
	type rawStatement struct {
		Sid         string          `json:"Sid"`
		Effect      string          `json:"Effect"`
		Action      strList         `json:"Action"`
		NotAction   strList         `json:"NotAction"`
		Resource    strList         `json:"Resource"`
		NotResource strList         `json:"NotResource"`
		Principal   json.RawMessage `json:"Principal"`
		Condition   json.RawMessage `json:"Condition"`
	}
	var sts []rawStatement
	st := bytes.TrimSpace(raw.Statement)
	switch {
	case len(st) == 0 || string(st) == "null":
	case st[0] == '{':
		var one rawStatement
		if err := json.Unmarshal(st, &one); err != nil {
			return PolicyDocument{}, fmt.Errorf("policy statement: %w", err)
		}
		sts = []rawStatement{one}
	default:
		if err := json.Unmarshal(st, &sts); err != nil {
			return PolicyDocument{}, fmt.Errorf("policy statements: %w", err)
		}
	}
	doc := PolicyDocument{Version: raw.Version}
	for i, s := range sts {
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return PolicyDocument{}, scan.Errorf(scan.ReasonInvalidValue, fmt.Sprintf("statement %d: Effect %s is neither Allow nor Deny", i, quote(s.Effect)))
		}
		doc.Statements = append(doc.Statements, Statement{
			Sid: s.Sid, Effect: s.Effect, Action: s.Action, NotAction: s.NotAction,
			Resource: s.Resource, NotResource: s.NotResource, Principal: s.Principal, Condition: s.Condition,
		})
	}
	return doc, nil
}

// NormalizeTo maps one configuration item (or a change notification's
// detail) to an OCSF Inventory Info event (class 5001, activity Log) in
// *ev: the asset is resources[0] (uid its ARN, or its id when it has
// none), an EC2 instance is also the device, and the typed Item is
// unmapped.asset. The observables name the asset itself (account, region
// and the instance, address, role, bucket, pipeline or deployment group),
// never the resources it refers to, so that inventory links nothing the
// activity did not.
func NormalizeTo(ev *ocsf.Event, rec []byte, depth int) error {
	if err := scan.Validate(rec, depth); err != nil {
		return err
	}
	it, err := ParseItem(rec)
	if err != nil {
		return err
	}
	*ev = ocsf.Event{}
	ev.SetClass(ocsf.ClassInventoryInfo, 1, "Log")
	ev.Raw = rec[:len(rec):len(rec)]
	ev.Time = it.CaptureTime
	ev.SeverityID, ev.Severity = ocsf.SeverityInformational, ocsf.SeverityName(ocsf.SeverityInformational)
	ev.StatusDetail = it.Status
	ev.Metadata = ocsf.Metadata{Version: ocsf.Version, LogName: LogName, LogProvider: "AWS Config", EventCode: it.ResourceType, UID: it.UID()}
	ev.Metadata.Product.Name, ev.Metadata.Product.VendorName = "AWS Config", "AWS"
	ev.Metadata.OriginalTime = ""
	ev.Cloud = ocsf.Cloud{Provider: "AWS", Region: it.Region, Account: ocsf.Account{UID: it.Account}}
	uid := it.ARN
	if uid == "" {
		uid = it.ResourceID
	}
	res := ocsf.Resource{UID: uid, Name: firstOf(it.ResourceName, it.ResourceID), Type: it.ResourceType, Region: it.Region}
	res.Owner.Account.UID = it.Account
	ev.Resources = []ocsf.Resource{res}
	ev.Message = it.ResourceType + " " + it.ResourceID + " " + it.Status
	ev.AddObservable(ocsf.EntityAccount, "cloud.account.uid", it.Account)
	ev.AddObservable(ocsf.EntityRegion, "cloud.region", it.Region)
	switch {
	case it.Instance != nil:
		in := it.Instance
		ev.Device = ocsf.Device{UID: it.ResourceID, InstanceUID: it.ResourceID, Name: it.Tags["Name"], IP: firstOf(in.PublicIP, in.PrivateIP), Type: "Virtual", TypeID: 6, Region: it.Region}
		ev.AddObservable(ocsf.EntityInstance, "device.instance_uid", it.ResourceID)
		ev.AddObservable(ocsf.EntityIP, "device.ip", ev.Device.IP)
	case it.ResourceType == TypeInstance:
		ev.AddObservable(ocsf.EntityInstance, "resources.uid", it.ResourceID)
	case it.ResourceType == TypeRole:
		ev.AddObservable(ocsf.EntityRole, "resources.uid", it.ARN)
	case it.ResourceType == TypeBucket:
		ev.AddObservable(ocsf.EntityBucket, "resources.name", firstOf(it.ResourceName, it.ResourceID))
	case it.ResourceType == TypePipeline:
		ev.AddObservable(ocsf.EntityPipeline, "resources.name", firstOf(it.ResourceName, it.ResourceID))
	case it.DeploymentGroup != nil:
		ev.AddObservable(ocsf.EntityApplication, "unmapped.asset.deployment_group.application_name", it.DeploymentGroup.ApplicationName)
		ev.AddObservable(ocsf.EntityDeploymentGroup, "unmapped.asset.deployment_group.deployment_group_name", it.DeploymentGroup.DeploymentGroupName)
	}
	um, err := json.Marshal(struct {
		Asset *Item `json:"asset"`
	}{&it})
	if err != nil {
		return scan.Errorf(scan.ReasonInternal, "marshal the item: "+err.Error())
	}
	ev.Unmapped = um
	return nil
}

// UID is the item's deterministic id: its account, type, resource id,
// capture time and state id, hashed. Redelivered items (a snapshot that
// repeats a history item) get the same id and fold.
func (it *Item) UID() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%s", it.Account, it.ResourceType, it.ResourceID, it.CaptureTime, it.StateID)
	return "awsconfig:" + hex.EncodeToString(h.Sum(nil)[:16])
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func validAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// quote quotes s for an error message, cut to 64 bytes.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Sprintf("%q", s)
}
