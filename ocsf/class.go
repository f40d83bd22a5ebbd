package ocsf

import "strings"

// OCSF category and class ids used by Musubi.
const (
	CategorySystem      = 1
	CategoryFindings    = 2
	CategoryIAM         = 3
	CategoryNetwork     = 4
	CategoryDiscovery   = 5
	CategoryApplication = 6

	ClassFileSystemActivity   = 1001
	ClassProcessActivity      = 1007
	ClassVulnerabilityFinding = 2002
	ClassDetectionFinding     = 2004
	ClassIncidentFinding      = 2005
	ClassAccountChange        = 3001
	ClassAuthentication       = 3002
	ClassNetworkActivity      = 4001
	ClassDNSActivity          = 4003
	ClassInventoryInfo        = 5001
	ClassConfigState          = 5002
	ClassAPIActivity          = 6003
)

// Class describes one OCSF class.
type Class struct {
	UID          int
	Name         string
	CategoryUID  int
	CategoryName string
}

// Classes lists the classes Musubi emits, by class uid.
var Classes = map[int]Class{
	ClassFileSystemActivity:   {ClassFileSystemActivity, "File System Activity", CategorySystem, "System Activity"},
	ClassProcessActivity:      {ClassProcessActivity, "Process Activity", CategorySystem, "System Activity"},
	ClassDetectionFinding:     {ClassDetectionFinding, "Detection Finding", CategoryFindings, "Findings"},
	ClassIncidentFinding:      {ClassIncidentFinding, "Incident Finding", CategoryFindings, "Findings"},
	ClassAccountChange:        {ClassAccountChange, "Account Change", CategoryIAM, "Identity & Access Management"},
	ClassAuthentication:       {ClassAuthentication, "Authentication", CategoryIAM, "Identity & Access Management"},
	ClassNetworkActivity:      {ClassNetworkActivity, "Network Activity", CategoryNetwork, "Network Activity"},
	ClassDNSActivity:          {ClassDNSActivity, "DNS Activity", CategoryNetwork, "Network Activity"},
	ClassInventoryInfo:        {ClassInventoryInfo, "Inventory Info", CategoryDiscovery, "Discovery"},
	ClassConfigState:          {ClassConfigState, "Config State", CategoryDiscovery, "Discovery"},
	ClassVulnerabilityFinding: {ClassVulnerabilityFinding, "Vulnerability Finding", CategoryFindings, "Findings"},
	ClassAPIActivity:          {ClassAPIActivity, "API Activity", CategoryApplication, "Application Activity"},
}

// SetClass fills class, category and type fields for class uid and activity
// id; type_uid is class_uid*100 + activity_id as OCSF defines it.
func (e *Event) SetClass(classUID, activityID int, activityName string) {
	c := Classes[classUID]
	e.ClassUID, e.ClassName = classUID, c.Name
	e.CategoryUID, e.CategoryName = c.CategoryUID, c.CategoryName
	e.ActivityID, e.ActivityName = activityID, activityName
	e.TypeUID = classUID*100 + activityID
	if c.Name != "" && activityName != "" {
		e.TypeName = c.Name + ": " + activityName
	}
}

// Severity ids as OCSF defines them.
const (
	SeverityUnknown       = 0
	SeverityInformational = 1
	SeverityLow           = 2
	SeverityMedium        = 3
	SeverityHigh          = 4
	SeverityCritical      = 5
	SeverityFatal         = 6
)

var severityNames = [...]string{"Unknown", "Informational", "Low", "Medium", "High", "Critical", "Fatal"}

// SeverityName returns the OCSF caption of a severity id.
func SeverityName(id int) string {
	if id < 0 || id >= len(severityNames) {
		return "Other"
	}
	return severityNames[id]
}

// SeverityID parses a severity caption (case-insensitive); unknown names give
// SeverityUnknown and false.
func SeverityID(name string) (int, bool) {
	for i, n := range severityNames {
		if strings.EqualFold(n, name) {
			return i, true
		}
	}
	return SeverityUnknown, false
}
