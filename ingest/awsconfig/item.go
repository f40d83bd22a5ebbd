package awsconfig

import (
	"encoding/json"
	"strings"
)

// The resource types Musubi reads from AWS Config; items of other types are
// kept as plain inventory (account, type, id, tags) without details.
const (
	TypeInstance        = "AWS::EC2::Instance"
	TypeSecurityGroup   = "AWS::EC2::SecurityGroup"
	TypeRole            = "AWS::IAM::Role"
	TypePolicy          = "AWS::IAM::Policy"
	TypeBucket          = "AWS::S3::Bucket"
	TypePipeline        = "AWS::CodePipeline::Pipeline"
	TypeDeploymentGroup = "AWS::CodeDeploy::DeploymentGroup"
)

// Item is one configuration item: the state of one resource at its capture
// time. The detail of a supported type is in the matching pointer field;
// the others are nil.
type Item struct {
	Account      string `json:"account"`
	Region       string `json:"region,omitempty"`
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
	ResourceName string `json:"resource_name,omitempty"`
	ARN          string `json:"arn,omitempty"`
	// CaptureTime is configurationItemCaptureTime in milliseconds since the
	// Unix epoch.
	CaptureTime int64 `json:"capture_time"`
	// Status is configurationItemStatus (OK, ResourceDiscovered,
	// ResourceDeleted, ResourceNotRecorded, ResourceDeletedNotRecorded).
	Status  string            `json:"status,omitempty"`
	StateID string            `json:"state_id,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`

	Instance        *Instance        `json:"instance,omitempty"`
	SecurityGroup   *SecurityGroup   `json:"security_group,omitempty"`
	Role            *Role            `json:"role,omitempty"`
	Policy          *ManagedPolicy   `json:"policy,omitempty"`
	Bucket          *Bucket          `json:"bucket,omitempty"`
	Pipeline        *Pipeline        `json:"pipeline,omitempty"`
	DeploymentGroup *DeploymentGroup `json:"deployment_group,omitempty"`
}

// Deleted reports whether the item records the deletion of its resource.
func (it *Item) Deleted() bool {
	return it.Status == "ResourceDeleted" || it.Status == "ResourceDeletedNotRecorded"
}

// Instance is an EC2 instance.
type Instance struct {
	PublicIP  string `json:"public_ip,omitempty"`
	PrivateIP string `json:"private_ip,omitempty"`
	// HTTPTokens is metadataOptions.httpTokens: "required" (IMDSv2 only) or
	// "optional" (IMDSv1 allowed); empty when Config did not record it.
	HTTPTokens string `json:"http_tokens,omitempty"`
	// HTTPEndpoint is metadataOptions.httpEndpoint: "enabled" or "disabled".
	HTTPEndpoint       string   `json:"http_endpoint,omitempty"`
	InstanceProfileARN string   `json:"instance_profile_arn,omitempty"`
	SecurityGroups     []string `json:"security_groups,omitempty"`
	State              string   `json:"state,omitempty"`
	ImageID            string   `json:"image_id,omitempty"`
}

// IMDSv1Allowed reports whether the instance answers IMDSv1 requests: the
// endpoint is not disabled and tokens are not required. AWS's default for
// instances launched without metadata options is "optional".
func (i *Instance) IMDSv1Allowed() bool {
	return !strings.EqualFold(i.HTTPEndpoint, "disabled") && !strings.EqualFold(i.HTTPTokens, "required")
}

// SecurityGroup is an EC2 security group; only ingress open to the
// internet is kept.
type SecurityGroup struct {
	GroupName string `json:"group_name,omitempty"`
	VPCID     string `json:"vpc_id,omitempty"`
	// OpenIngress lists the ingress permissions from 0.0.0.0/0 or ::/0.
	OpenIngress []PortRange `json:"open_ingress,omitempty"`
}

// PortRange is one ingress permission open to the internet.
type PortRange struct {
	Protocol string `json:"protocol"` // tcp, udp, icmp or -1 (all)
	FromPort int    `json:"from_port"`
	ToPort   int    `json:"to_port"`
	CIDR     string `json:"cidr"`
}

// Role is an IAM role with its inline policies and the ARNs of its attached
// managed policies (their documents are AWS::IAM::Policy items; AWS managed
// policies are not recorded by Config).
type Role struct {
	RoleName         string         `json:"role_name"`
	InstanceProfiles []string       `json:"instance_profiles,omitempty"`
	InlinePolicies   []NamedPolicy  `json:"inline_policies,omitempty"`
	AttachedPolicies []string       `json:"attached_policies,omitempty"`
	TrustPolicy      PolicyDocument `json:"trust_policy,omitzero"`
	// PermissionsBoundary is the ARN of the boundary policy, if any.
	PermissionsBoundary string `json:"permissions_boundary,omitempty"`
}

// NamedPolicy is an inline policy.
type NamedPolicy struct {
	Name     string         `json:"name"`
	Document PolicyDocument `json:"document"`
}

// ManagedPolicy is a customer managed IAM policy: its default version.
type ManagedPolicy struct {
	PolicyName     string         `json:"policy_name"`
	DefaultVersion string         `json:"default_version,omitempty"`
	Document       PolicyDocument `json:"document"`
}

// Bucket is an S3 bucket with the settings that protect its objects.
type Bucket struct {
	// Versioning is BucketVersioningConfiguration.status: Enabled,
	// Suspended or Off.
	Versioning        string             `json:"versioning,omitempty"`
	MFADelete         bool               `json:"mfa_delete,omitempty"`
	ObjectLock        bool               `json:"object_lock,omitempty"`
	PublicAccessBlock *PublicAccessBlock `json:"public_access_block,omitempty"`
	Policy            PolicyDocument     `json:"policy,omitzero"`
}

// VersioningEnabled reports whether versioning is on.
func (b *Bucket) VersioningEnabled() bool { return strings.EqualFold(b.Versioning, "Enabled") }

// PublicAccessBlock is the bucket's public access block.
type PublicAccessBlock struct {
	BlockPublicACLs       bool `json:"block_public_acls"`
	IgnorePublicACLs      bool `json:"ignore_public_acls"`
	BlockPublicPolicy     bool `json:"block_public_policy"`
	RestrictPublicBuckets bool `json:"restrict_public_buckets"`
}

// Pipeline is a CodePipeline pipeline.
type Pipeline struct {
	Name    string  `json:"name"`
	RoleARN string  `json:"role_arn,omitempty"`
	Stages  []Stage `json:"stages"`
}

// Stage is one stage of a pipeline.
type Stage struct {
	Name    string   `json:"name"`
	Actions []Action `json:"actions"`
}

// Action is one action of a stage, with the configuration keys Musubi
// reads.
type Action struct {
	Name     string `json:"name"`
	Category string `json:"category"` // Source, Build, Test, Deploy, Approval, Invoke
	Owner    string `json:"owner,omitempty"`
	Provider string `json:"provider"` // S3, CodeDeploy, Manual, ...
	// S3Bucket and S3ObjectKey are the source location of an S3 source.
	S3Bucket    string `json:"s3_bucket,omitempty"`
	S3ObjectKey string `json:"s3_object_key,omitempty"`
	// ApplicationName and DeploymentGroupName are the target of a
	// CodeDeploy deploy action.
	ApplicationName     string `json:"application_name,omitempty"`
	DeploymentGroupName string `json:"deployment_group_name,omitempty"`
}

// DeploymentGroup is a CodeDeploy deployment group and its targets.
type DeploymentGroup struct {
	ApplicationName     string      `json:"application_name"`
	DeploymentGroupName string      `json:"deployment_group_name"`
	ServiceRoleARN      string      `json:"service_role_arn,omitempty"`
	TagFilters          []TagFilter `json:"tag_filters,omitempty"`
	AutoScalingGroups   []string    `json:"auto_scaling_groups,omitempty"`
}

// TagFilter selects target instances by tag.
type TagFilter struct {
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
	Type  string `json:"type,omitempty"` // KEY_ONLY, VALUE_ONLY, KEY_AND_VALUE
}

// PolicyDocument is an IAM policy document.
type PolicyDocument struct {
	Version    string      `json:"version,omitempty"`
	Statements []Statement `json:"statements,omitempty"`
}

// Statement is one statement of a policy. Action, Resource and their Not
// forms are lists even when the document wrote a single string.
type Statement struct {
	Sid         string          `json:"sid,omitempty"`
	Effect      string          `json:"effect"`
	Action      []string        `json:"action,omitempty"`
	NotAction   []string        `json:"not_action,omitempty"`
	Resource    []string        `json:"resource,omitempty"`
	NotResource []string        `json:"not_resource,omitempty"`
	Principal   json.RawMessage `json:"principal,omitempty"`
	Condition   json.RawMessage `json:"condition,omitempty"`
}

// ProductionTagKeys and ProductionTagValues mark a resource or a deployment
// target as production: a tag whose key is one of the keys (any case) with a
// value that is one of the values (any case).
var (
	ProductionTagKeys   = []string{"environment", "env", "stage", "tier"}
	ProductionTagValues = []string{"production", "prod", "prd", "live"}
)

// IsProductionTag reports whether key=value marks production.
func IsProductionTag(key, value string) bool {
	k, v := strings.ToLower(key), strings.ToLower(value)
	for _, pk := range ProductionTagKeys {
		if k == pk {
			for _, pv := range ProductionTagValues {
				if v == pv {
					return true
				}
			}
		}
	}
	return false
}

// Production reports whether the deployment group deploys to production:
// the group is tagged so (tags of its item), or a target tag filter selects
// production instances.
func (g *DeploymentGroup) Production(tags map[string]string) bool {
	for k, v := range tags {
		if IsProductionTag(k, v) {
			return true
		}
	}
	for _, f := range g.TagFilters {
		if IsProductionTag(f.Key, f.Value) {
			return true
		}
	}
	return false
}
