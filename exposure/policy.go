package exposure

import (
	"strings"

	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/internal/glob"
)

// Policy is a policy document with the name the evidence gives it (an
// inline policy's name, a managed policy's ARN, "bucket policy").
type Policy struct {
	Name     string
	Document awsconfig.PolicyDocument
}

// StatementRef names one statement of a policy: the evidence of a hop.
type StatementRef struct {
	Policy    string   `json:"policy"`
	Index     int      `json:"statement"`
	Sid       string   `json:"sid,omitempty"`
	Effect    string   `json:"effect"`
	Action    []string `json:"action,omitempty"`
	NotAction []string `json:"not_action,omitempty"`
	Resource  []string `json:"resource,omitempty"`
	// ConditionNotEvaluated is set when the statement has a Condition:
	// conditions are not evaluated, so the statement is assumed to apply.
	ConditionNotEvaluated bool `json:"condition_not_evaluated,omitempty"`
}

// Decision is the outcome of evaluating policies for one action on one
// resource.
type Decision struct {
	Allowed bool
	// Allows are the statements that allow; Denies the explicit denies
	// that apply (a Deny with a condition is listed but does not deny:
	// conditions are not evaluated).
	Allows []StatementRef
	Denies []StatementRef
}

// Evaluate decides whether the policies allow action on resource, the way
// IAM combines identity policies within one account: an explicit Deny that
// applies wins; otherwise any Allow that applies allows. A statement
// applies when its Action (or NotAction) and Resource (or NotResource)
// match, with IAM's wildcards (* and ?; actions case-insensitive).
//
// Approximations: conditions are not evaluated — an Allow with a Condition
// is assumed to apply (so a path may exist only under the condition), a
// Deny with a Condition is assumed not to (so it cannot hide a path); both
// are marked ConditionNotEvaluated in the evidence. Policy variables
// (${aws:username}) are matched as literal text.
func Evaluate(policies []Policy, action, resource string) Decision {
	var d Decision
	for _, p := range policies {
		for i, st := range p.Document.Statements {
			if !actionMatches(st, action) || !resourceMatches(st, resource) {
				continue
			}
			ref := StatementRef{Policy: p.Name, Index: i, Sid: st.Sid, Effect: st.Effect, Action: st.Action, NotAction: st.NotAction,
				Resource: append(append([]string(nil), st.Resource...), st.NotResource...), ConditionNotEvaluated: len(st.Condition) > 0 && string(st.Condition) != "null"}
			if st.Effect == "Deny" {
				d.Denies = append(d.Denies, ref)
			} else {
				d.Allows = append(d.Allows, ref)
			}
		}
	}
	for _, r := range d.Denies {
		if !r.ConditionNotEvaluated {
			return Decision{Allowed: false, Allows: d.Allows, Denies: d.Denies}
		}
	}
	d.Allowed = len(d.Allows) > 0
	return d
}

func actionMatches(st awsconfig.Statement, action string) bool {
	return matchesList(st.Action, st.NotAction, action, true)
}

// resourceMatches: bucket policies may leave Resource out only in invalid
// documents; identity policies always name one. No resource: no match.
func resourceMatches(st awsconfig.Statement, resource string) bool {
	return matchesList(st.Resource, st.NotResource, resource, false)
}

// matchesList reports whether s matches one of the patterns of list, or,
// when list is empty, none of those of notList; with neither, nothing
// matches. fold compares case-insensitively (IAM actions).
func matchesList(list, notList []string, s string, fold bool) bool {
	switch {
	case len(list) > 0:
		return anyGlob(list, s, fold)
	case len(notList) > 0:
		return !anyGlob(notList, s, fold)
	}
	return false
}

// anyGlob matches s against IAM patterns: * matches any run of characters
// (including none, '/' and ':'), ? one character.
func anyGlob(patterns []string, s string, fold bool) bool {
	if fold {
		s = strings.ToLower(s)
	}
	for _, p := range patterns {
		if fold {
			p = strings.ToLower(p)
		}
		if glob.Match(s, p) {
			return true
		}
	}
	return false
}

// awsManaged holds the statements of the AWS managed policies that matter
// for writing to S3. Config does not record AWS managed policies (only
// customer managed ones), so their documents come from here; any other AWS
// managed policy is listed as not evaluated.
var awsManaged = map[string]awsconfig.PolicyDocument{
	"arn:aws:iam::aws:policy/AdministratorAccess": {Statements: []awsconfig.Statement{{Effect: "Allow", Action: []string{"*"}, Resource: []string{"*"}}}},
	"arn:aws:iam::aws:policy/PowerUserAccess": {Statements: []awsconfig.Statement{
		{Effect: "Allow", NotAction: []string{"iam:*", "organizations:*", "account:*"}, Resource: []string{"*"}}}},
	"arn:aws:iam::aws:policy/AmazonS3FullAccess": {Statements: []awsconfig.Statement{
		{Effect: "Allow", Action: []string{"s3:*", "s3-object-lambda:*"}, Resource: []string{"*"}}}},
	"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess": {Statements: []awsconfig.Statement{
		{Effect: "Allow", Action: []string{"s3:Get*", "s3:List*", "s3:Describe*", "s3-object-lambda:Get*", "s3-object-lambda:List*"}, Resource: []string{"*"}}}},
	"arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore": {Statements: []awsconfig.Statement{
		{Effect: "Allow", Action: []string{"ssm:DescribeAssociation", "ssm:GetDeployablePatchSnapshotForInstance", "ssm:GetDocument", "ssm:DescribeDocument",
			"ssm:GetManifest", "ssm:GetParameter", "ssm:GetParameters", "ssm:ListAssociations", "ssm:ListInstanceAssociations", "ssm:PutInventory",
			"ssm:PutComplianceItems", "ssm:PutConfigurePackageResult", "ssm:UpdateAssociationStatus", "ssm:UpdateInstanceAssociationStatus",
			"ssm:UpdateInstanceInformation", "ssmmessages:*", "ec2messages:*"}, Resource: []string{"*"}}}},
	"arn:aws:iam::aws:policy/service-role/AmazonEC2RoleforAWSCodeDeploy": {Statements: []awsconfig.Statement{
		{Effect: "Allow", Action: []string{"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"}, Resource: []string{"*"}}}},
}
