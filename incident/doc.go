// Package incident holds the incident graph the correlator builds: the
// incident with its nodes (entities and alerts), edges, timeline and the
// reasons that joined each alert. It is a data type shared by the
// correlator that makes incidents, storage that writes and reads them, the
// API that serves them and the notifier that announces them, and so
// imports nothing but the event model.
package incident
