package notify

import (
	"strings"

	"github.com/berthd/berth/cluster/model"
)

// State is a commit status's state, in GitHub's and Gitea's words.
type State string

// Commit status states.
const (
	Pending State = "pending"
	Success State = "success"
	Failure State = "failure"
)

// maxDescription is the longest description every provider takes (GitHub's 140).
const maxDescription = 140

// Status is one commit status of a revision.
type Status struct {
	State       State
	Description string
	// Context tells berth's statuses from a CI's: berth/SOURCE.
	Context string
}

// githubStatus is the body of GitHub's and Gitea's "create a commit status".
type githubStatus struct {
	State       State  `json:"state"`
	Description string `json:"description"`
	Context     string `json:"context"`
}

// gitlabStatus is the body of GitLab's "set the pipeline status of a commit".
type gitlabStatus struct {
	State       string `json:"state"`
	Description string `json:"description"`
	Name        string `json:"name"`
}

// StatusDelivery is the POST of st to endpoint (model.CommitStatus.Endpoint), with
// the token as the provider wants it.
func StatusDelivery(p model.CommitStatusProvider, endpoint, token string, st Status) (Delivery, error) {
	desc := cut(st.Description, maxDescription)
	// One queue per repository: a commit's statuses arrive in the order they were made.
	queue := endpoint
	if i := strings.LastIndex(endpoint, "/statuses/"); i >= 0 {
		queue = endpoint[:i]
	}
	switch p {
	case model.CommitStatusGitLab:
		state := string(st.State)
		if st.State == Failure {
			state = "failed"
		}
		return jsonDelivery(string(p), queue, endpoint, gitlabStatus{State: state, Description: desc, Name: st.Context},
			"PRIVATE-TOKEN", token)
	case model.CommitStatusGitHub:
		return jsonDelivery(string(p), queue, endpoint, githubStatus{State: st.State, Description: desc, Context: st.Context},
			"Authorization", "Bearer "+token, "Accept", "application/vnd.github+json", "X-GitHub-Api-Version", "2022-11-28")
	}
	return jsonDelivery(string(p), queue, endpoint, githubStatus{State: st.State, Description: desc, Context: st.Context},
		"Authorization", "token "+token)
}

// cut shortens s to max runes, on one line.
func cut(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}
