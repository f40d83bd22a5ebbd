// Package sigma converts Sigma rules (https://sigmahq.io) into Musubi
// detection rules, for the log sources Musubi normalizes: AWS CloudTrail
// (product aws, service cloudtrail) and Linux process_creation, file_event
// and network_connection from the agent and Falco.
//
// A converted rule reads the normalized OCSF event, not the raw record: a
// field map per log source says where each Sigma field lands (eventName is
// api.operation, userIdentity.arn is actor.user.uid_alt, requestParameters.x
// is request.x, Image is process.file.path, ...), following ingest/cloudtrail
// and the agent normalizer. Sigma's matching is kept: plain values are
// case-insensitive (iequals), lists are any-of, contains/startswith/endswith
// (with all), unescaped * and ? wildcards (iglob), re (with i, m, s), cidr,
// base64 and base64offset (cased, as encoded text is), windash, exists,
// fieldref, cased, lt/lte/gt/gte; conditions with and, or, not,
// parentheses, "1 of" and "all of" a pattern or them. The level becomes the
// severity, attack.* tags the ATT&CK mapping (checked against package
// attack: unknown techniques and tactics none of the techniques belongs to
// are left out, with a note), and the id, author, dates, tags, references,
// false positives and licence are kept in the rule file.
//
// A rule is converted whole or not at all: any construct Musubi cannot
// express (keywords, aggregations, an unmapped field, an unknown modifier)
// is listed in the Result and the rule is not written. Each converted rule
// gets two inline tests generated from its detection, a matching event and
// the same event with one tested field changed, and is written only after
// the rule compiles and passes both.
//
// eventName values that every match needs become sources.operations, so
// the engine's index skips the rule for other calls; the index compares
// operations exactly, so an eventName written in another case than
// CloudTrail's is not matched.
package sigma
