// Package applier is berth's GitOps side: it reads stacks out of Git revisions and
// directories, plans them against the cluster and applies them.
//
// # The cluster
//
// The applier talks to the cluster through [Cluster], which it declares and the daemon
// implements, like any client: reads of the replicated state, the plan of a revision
// (made by the control plane, which also previews where its tasks would land), and the
// writes of syncs and pushes, whose raft commands are made on the cluster's side. A
// revision is loaded and validated here; the cluster never sees Git.
//
// A push is planned once: the pre-receive hook loads, validates and plans the pushed
// revision, prints the plan and keeps it ([PushPlans]); the sync the push requests
// applies that plan, after checking as always that the revision descends from the one
// last applied. The plan remembers the stacks' state index it was compared at, and is
// compared again (its commands kept) only when a stack changed in between.
//
// # Reading a revision
//
// A [Repository] is read through go-git without a work tree checkout: [Repository.TreeFS]
// serves the tree of one commit as an [io/fs.FS] straight from the object store, so two
// revisions can be loaded side by side and compared without touching the disk.
// [LoadStacks] then loads every stack of that tree; a revision is applied whole or not
// at all, so it reports the problems of every stack at once.
//
// # Remotes
//
// A pull source's remote is followed by a [Mirror] over go-git's transports (https,
// http, ssh and git@host:path, git, file: model.CheckGitURL, which the managers apply
// when a source is added, so that no other URL reaches a sync). A source's CA, when it
// has one, is trusted for its HTTPS fetches besides the system's CAs.
//
// # Repository layout
//
// At the source path, a berth.yaml lists the stacks explicitly:
//
//	stacks:
//	  - name: web                              # required: lowercase letters, digits, '-' and '_',
//	                                           # starting with a letter or a digit
//	    files: [web/compose.yml, web/prod.yml] # Compose files, merged in order
//	    dir: web                               # working dir for relative paths in the files
//	    env_files: [web/.env]                  # dotenv files for ${VAR} interpolation
//	    depends_on: [db]                       # stacks whose services must all run first
//	  - name: db                               # no files: the Compose file found in dir,
//	                                           # and dir defaults to the stack's name
//
// Every path in berth.yaml is relative to the directory holding berth.yaml and must stay
// inside the repository. The rules:
//
//   - files defaults to the one Compose file (see below) found in dir;
//   - dir defaults to the directory of the first file, or to the stack's name when files
//     is not given either;
//   - env_files, when not given, is the .env file in dir if there is one (as Compose does
//     for its project directory); env_files: [] means none;
//   - names are unique, every file exists, depends_on names stacks of the same berth.yaml
//     and has no cycles.
//
// Unknown keys are errors naming the line, so a typo never goes unnoticed.
//
// Without berth.yaml, every folder under the source path (the source path itself
// included, hidden folders skipped) that holds one of compose.yaml, compose.yml,
// docker-compose.yml, docker-compose.yaml or stack.yml is one stack, named after the
// folder the way Compose names projects: lower-cased, with characters other than
// letters, digits, '-' and '_' dropped. The source path itself is named after its last
// element, or "default" at the repository root. A .env file beside the Compose file is
// used for interpolation. A folder holding two of these names is an error rather than
// a silent pick.
package applier
