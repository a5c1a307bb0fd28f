package web

import (
	"github.com/labstack/echo/v4/middleware"

	"zimage/app"
)

// routes is the one table of every route, grouped by audience; each route
// names its guards. Every route must also have a row in the authorization
// matrix test (authz_test.go), or the build fails.
func (s *Server) routes() {
	e := s.e
	e.Pre(middleware.RemoveTrailingSlash())
	e.Use(requestID(), s.observe, middleware.Recover(), s.securityHeaders, s.bodyDeadline, s.bodyLimit(s.opts.MaxBodyBytes), s.limitAddress, s.authenticate, s.limitKey, s.privacySignals)
	s.pageHook = s.fillPage

	// Ops.
	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	e.GET("/metrics", s.handleMetrics())

	// Public pages and files.
	e.GET("/", s.handleHome)
	e.GET("/static/*", s.handleStatic)
	e.GET("/privacy", s.handlePrivacy)
	e.GET("/privacy/versions/:n", s.handlePrivacyVersion)

	// API: anyone.
	api := e.Group("/api/v1")
	api.GET("/policy", s.handlePolicyAPI)
	api.GET("/policy/versions", s.handlePolicyVersionsAPI)
	api.GET("/policy/versions/:n", s.handlePolicyVersionAPI)
	api.POST("/auth/signup", s.handleSignup)
	api.POST("/auth/login", s.handleLogin)
	api.POST("/auth/logout", s.handleLogout)
	api.POST("/auth/reset", s.handleReset)
	api.POST("/auth/reset-request", s.handleResetRequest)
	api.POST("/auth/verify-email", s.handleVerifyEmail)

	// API: the caller's own account. Reading works with a read-scoped API
	// key; account security needs a browser session.
	read, session := s.requireUser(app.ScopeRead), s.requireSession
	api.GET("/me", s.handleMeGet, read)
	api.PATCH("/me", s.handleMeUpdate, session)
	api.GET("/me/access-log", s.handleMeAccessLog, read)
	api.POST("/me/password", s.handleMePassword, session)
	api.POST("/me/email", s.handleEmailChange, session)
	api.GET("/me/sessions", s.handleMeSessions, session)
	api.DELETE("/me/sessions", s.handleMeSessionsDelete, session)
	api.DELETE("/me/sessions/:id", s.handleMeSessionDelete, session)
	api.POST("/me/2fa", s.handleMe2FAStart, session)
	api.GET("/me/2fa/qr.png", s.handleMe2FAQR, session)
	api.POST("/me/2fa/confirm", s.handleMe2FAConfirm, session)
	api.DELETE("/me/2fa", s.handleMe2FADisable, session)
	api.GET("/me/api-keys", s.handleMeAPIKeys, session)
	api.POST("/me/api-keys", s.handleMeAPIKeyCreate, session)
	api.DELETE("/me/api-keys/:id", s.handleMeAPIKeyDelete, session)

	// API: the caller's privacy rights — deletion, consents, restriction,
	// policy acknowledgement. A browser session only: a leaked API key must
	// not be able to delete an account or change consent.
	api.DELETE("/me", s.handleMeDelete, session)
	api.GET("/me/consents", s.handleMeConsents, session)
	api.POST("/me/consents", s.handleMeConsentSet, session)
	api.POST("/me/restrict", s.handleMeRestrict, session)
	api.POST("/me/policy-ack", s.handleMePolicyAck, session)

	// API: exports, data-rights requests and support tickets, the
	// caller's own only (another person's ids answer 404). Exports and
	// filing need a browser session: a leaked API key must not be able
	// to carry off everything at once.
	api.POST("/me/exports", s.createExport, session)
	api.GET("/me/exports", s.listExports, session)
	api.GET("/me/exports/:id", s.showExport, session)
	api.GET("/me/exports/:id/download", s.downloadExport, session)
	api.GET("/me/requests", s.listMyRequests, read)
	api.POST("/me/requests", s.fileRequest, session)
	api.GET("/tickets", s.listTickets, read)
	api.POST("/tickets", s.createTicket, session)
	api.GET("/tickets/:id", s.showTicket, read)
	api.POST("/tickets/:id/messages", s.replyTicket, session)

	// API: support staff (support role and admins) answer tickets.
	staff := s.requireStaff
	api.GET("/support/tickets", s.supportQueue, staff)
	api.GET("/support/tickets/:id", s.supportShowTicket, staff)
	api.POST("/support/tickets/:id/messages", s.supportReply, staff)
	api.POST("/support/tickets/:id/close", s.supportClose, staff)

	// API: generations and images, the caller's own only (another
	// person's ids answer 404).
	generate := s.requireUser(app.ScopeGenerate)
	api.POST("/generations", s.createGeneration, generate)
	api.GET("/generations", s.listGenerations, read)
	api.GET("/generations/:id", s.showGeneration, read)
	api.POST("/generations/:id/cancel", s.cancelGeneration, generate)
	api.GET("/events", s.streamEvents, read)
	api.GET("/images", s.listImages, read)
	api.GET("/images/:id", s.showImage, read)
	api.GET("/images/:id/file", s.imageFile, read)
	api.PATCH("/images/:id", s.updateImage, generate)
	api.DELETE("/images/:id", s.deleteImage, generate)

	// OpenAI-compatible images API, for existing clients (API key with the
	// generate scope, or a session).
	// Errors on /v1 come in OpenAI's shape (openai_errors.go). Image
	// links from response_format=url carry their own signature and work
	// without a key until they expire.
	e.POST("/v1/images/generations", s.openAIGenerate, generate)
	e.GET("/v1/models", s.listOpenAIModels, generate)
	e.GET("/v1/models/:id", s.showOpenAIModel, generate)
	e.GET("/v1/images/files/:id", s.imageLinkFile)

	// Pages for signed-in people; anonymous visitors are sent to sign in.
	pages := s.requirePage
	e.GET("/generate", s.generateForm, pages)
	e.POST("/generate", s.generateSubmit, pages)
	e.POST("/generations/:id/cancel", s.cancelGenerationForm, pages)
	e.GET("/gallery", s.galleryView, pages)
	e.POST("/gallery/bulk", s.galleryBulk, pages)
	e.GET("/images/:id", s.imageView, pages)
	e.POST("/images/:id/delete", s.imageDeleteForm, pages)
	e.POST("/images/:id/favourite", s.imageFavouriteForm, pages)

	// Account pages: signing up, in and out, and the reset link (anyone);
	// settings (signed in); admin (admins only, a 403 page for others).
	e.GET("/signup", s.signupForm)
	e.POST("/signup", s.signupSubmit)
	e.GET("/login", s.loginForm)
	e.POST("/login", s.loginSubmit)
	e.POST("/login/2fa", s.loginSecondFactor)
	e.POST("/logout", s.logoutSubmit)
	e.GET("/verify-email", s.verifyEmailForm)
	e.POST("/verify-email", s.verifyEmailSubmit)
	e.GET("/forgot", s.forgotForm)
	e.POST("/forgot", s.forgotSubmit)
	e.GET("/reset", s.resetForm)
	e.POST("/reset", s.resetSubmit)
	e.GET("/settings", s.settingsHome, pages)
	e.GET("/settings/profile", s.settingsProfile, pages)
	e.POST("/settings/profile", s.settingsProfileSave, pages)
	e.GET("/settings/password", s.settingsPassword, pages)
	e.POST("/settings/password", s.settingsPasswordSave, pages)
	e.GET("/settings/security", s.settingsSecurity, pages)
	e.POST("/settings/security/2fa", s.settings2FAStart, pages)
	e.POST("/settings/security/2fa/confirm", s.settings2FAConfirm, pages)
	e.POST("/settings/security/2fa/disable", s.settings2FADisable, pages)
	e.POST("/settings/security/sessions/:id/revoke", s.settingsSessionRevoke, pages)
	e.POST("/settings/security/sessions/revoke-others", s.settingsSessionsRevokeOthers, pages)
	e.GET("/settings/api-keys", s.settingsAPIKeys, pages)
	e.POST("/settings/api-keys", s.settingsAPIKeyCreate, pages)
	e.POST("/settings/api-keys/:id/revoke", s.settingsAPIKeyRevoke, pages)
	// Privacy & data, communications and support pages (page_privacy.go,
	// page_communications.go, page_support.go): one's own only; the
	// support page itself is public (how to reach the operator), the
	// queue is for support staff and admins, /goodbye is where a deleted
	// account lands, signed out.
	e.GET("/settings/privacy", s.settingsPrivacy, pages)
	e.POST("/settings/privacy/exports", s.settingsExportCreate, pages)
	e.POST("/settings/privacy/consents", s.consentsSave("privacy"), pages)
	e.POST("/settings/privacy/restrict", s.settingsRestrict, pages)
	e.POST("/settings/privacy/requests", s.settingsRequestFile, pages)
	e.POST("/settings/privacy/policy-ack", s.settingsPolicyAck, pages)
	e.POST("/settings/privacy/delete", s.settingsAccountDelete, pages)
	e.GET("/goodbye", s.goodbyeView)
	e.GET("/settings/communications", s.settingsCommunications, pages)
	e.POST("/settings/communications/consents", s.consentsSave("communications"), pages)
	e.GET("/support", s.supportView)
	e.POST("/support/tickets", s.supportTicketOpen, pages)
	e.GET("/support/tickets/:id", s.supportTicketView, pages)
	e.POST("/support/tickets/:id/reply", s.supportTicketReply, pages)
	staffPages := s.requireStaffPage
	e.GET("/support/queue", s.supportQueueView, staffPages)
	e.GET("/support/queue/:id", s.supportStaffTicketView, staffPages)
	e.POST("/support/queue/:id/reply", s.supportStaffReply, staffPages)
	e.POST("/support/queue/:id/close", s.supportStaffClose, staffPages)
	adminPages := s.requireAdminPage
	e.GET("/admin", s.adminHome, adminPages)
	e.GET("/admin/users", s.adminUsersView, adminPages)
	e.POST("/admin/users/:id/role", s.adminUserRole, adminPages)
	e.POST("/admin/users/:id/status", s.adminUserStatus, adminPages)
	e.POST("/admin/users/:id/reset-link", s.adminUserResetLink, adminPages)
	e.POST("/admin/invites", s.adminInviteCreate, adminPages)
	e.POST("/admin/signup-mode", s.adminSignupModeSave, adminPages)
	e.GET("/admin/backends", s.adminBackendsView, adminPages)
	e.GET("/admin/audit", s.adminAuditView, adminPages)
	e.GET("/admin/requests", s.adminRequestsView, adminPages)
	e.POST("/admin/requests/:id/close", s.adminRequestClose, adminPages)

	// API: admins.
	// Routes that name an account by :id also pass requireLiveAccount:
	// a deleted account is 404 for all of them.
	admin, live := s.requireAdmin, s.requireLiveAccount
	api.GET("/admin/backends", s.adminBackends, admin)
	api.GET("/admin/users", s.handleAdminUsers, admin)
	api.POST("/admin/users", s.handleAdminUserCreate, admin)
	api.PATCH("/admin/users/:id", s.handleAdminUserUpdate, admin, live)
	api.POST("/admin/users/:id/access", s.handleAdminAccess, admin, live)
	api.GET("/admin/users/:id/profile", s.handleAdminProfile, admin, live, s.requireAccessGrant)
	api.GET("/admin/users/:id/images", s.adminUserImages, admin, live, s.requireAccessGrant)
	api.GET("/admin/users/:id/images/:image/file", s.adminUserImageFile, admin, live, s.requireAccessGrant)
	api.POST("/admin/users/:id/reset-link", s.handleAdminResetLink, admin, live)
	api.POST("/admin/invites", s.handleAdminInvite, admin)
	api.PUT("/admin/settings/signup", s.handleAdminSignupMode, admin)
	api.GET("/admin/audit", s.handleAdminAudit, admin)
	api.GET("/admin/mail", s.handleAdminMail, admin)
	api.POST("/admin/mail/:id/retry", s.handleAdminMailRetry, admin)
	// Admins: the data-rights request queue.
	api.GET("/admin/requests", s.adminRequests, admin)
	api.POST("/admin/requests/:id/close", s.adminCloseRequest, admin)
	// Admins: legal holds and ending a child's account (privacy rights).
	api.GET("/admin/users/:id/hold", s.handleAdminHoldGet, admin, live)
	api.POST("/admin/users/:id/hold", s.handleAdminHoldSet, admin, live)
	api.DELETE("/admin/users/:id/hold", s.handleAdminHoldRelease, admin, live)
	api.POST("/admin/users/:id/under-13", s.handleAdminChild, admin, live)
}
