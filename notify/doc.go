// Package notify sends webhooks when an incident is new or its severity
// rises: a Slack-compatible payload or a generic JSON one, signed per the
// Standard Webhooks specification (webhook-id, webhook-timestamp and
// webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>" with a
// "whsec_" base64 secret).
//
// The pipeline calls Observe after each durable batch write; Observe never
// blocks. It detects new incidents and escalations against a bounded map of
// the last severity seen per incident, and enqueues one delivery per
// matching endpoint. Run delivers them, retrying transient failures (network
// errors, 408, 429, 5xx) with exponential back-off up to MaxAttempts; other
// 4xx answers are permanent.
//
// Overload policy: the queue holds at most QueueSize deliveries. When it is
// full, the oldest waiting delivery is dropped and counted in
// musubi_notify_dropped_total{reason="queue_full"}: fresh news beats old
// news. Deliveries still queued at shutdown are counted with
// reason="shutdown". The severity map holds at most SeenCapacity incidents;
// the oldest entry is forgotten first, so an incident not seen for a long
// time may be announced again. After a restart every incident observed is
// new to the notifier: receivers should de-duplicate on data.id.
//
// A nil *Notifier is valid and does nothing, so the engine can run and feed
// one whether or not webhooks are configured.
package notify
