package ui

import (
	"net/http"

	"github.com/berthd/berth/cluster/ca"
)

// cookieName is the session cookie; its __Host- prefix makes browsers keep it to
// this host and Secure, whatever sets cookies elsewhere on the domain.
const cookieName = "__Host-berth-ui"

// authorized lets next serve admins (client certificate) and open sessions; anyone
// else gets the page that says how to log in.
func (h *handler) authorized(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.allowed(r) {
			next(w, r)
			return
		}
		h.render(w, r, http.StatusUnauthorized, "login", view{Title: "Log in", Now: h.o.Now()})
	}
}

func (h *handler) allowed(r *http.Request) bool {
	if _, err := ca.RequireIdentity(r, h.o.ClusterID(), ca.RoleAdmin); err == nil {
		return true
	}
	c, err := r.Cookie(cookieName)
	return err == nil && h.o.Sessions.Valid(c.Value)
}

// login spends a login link's token and opens a session. The answer is a page that
// moves on to the overview itself rather than an HTTP redirect: browsers withhold a
// SameSite=Strict cookie from a redirect that follows a link clicked on another site
// (a chat, a terminal), and a page's own navigation is same-site.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	session, expires, ok := h.o.Sessions.Redeem(r.URL.Query().Get("token"))
	if !ok {
		h.render(w, r, http.StatusUnauthorized, "login", view{Title: "Log in", Now: h.o.Now(),
			Data: "This login link is not valid: it was used already, it expired (links work once, for 5 minutes), or another manager made it."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: session, Path: "/", Expires: expires,
		MaxAge: int(SessionTTL.Seconds()), Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	h.render(w, r, http.StatusOK, "loggedin", view{Title: "Logged in", Now: h.o.Now()})
}
