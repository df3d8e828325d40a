/// Who a bearer token speaks for (API.md "Staff and operator API").
public enum Role: String, Sendable, CaseIterable {
    /// Everything.
    case admin
    /// Redeems bookings at the counter.
    case staff
    /// Reads stats, exports and the audit trail.
    case auditor

    /// Whether this role may use a route that asks for `needed`.
    public func may(_ needed: Role) -> Bool {
        self == .admin || self == needed
    }
}

extension Route {
    /// The role a route asks for; nil for citizen and operations routes.
    public var neededRole: Role? {
        switch self {
        case .createCampaign, .patchCampaign, .putSites, .putSlots, .patchSlot, .putRateLimits, .commitDraw, .runDraw: return .admin
        case .campaignStats, .exportReservations, .auditTrail, .reservationEvents: return .auditor
        case .redeemReservation: return .staff
        default: return nil
        }
    }

    /// A short fixed name, for metrics labels (never a path parameter).
    public var name: String {
        switch self {
        case .healthz: "healthz"
        case .readyz: "readyz"
        case .metrics: "metrics"
        case .openAPIDocument: "openapi"
        case .listCampaigns: "list_campaigns"
        case .getCampaign: "get_campaign"
        case .listSites: "list_sites"
        case .listSlots: "list_slots"
        case .openAvailability: "open_availability"
        case .homePage: "home_page"
        case .campaignPage: "campaign_page"
        case .sitePage: "site_page"
        case .bookingForm: "booking_form"
        case .bookingCheck: "booking_check"
        case .bookingSlot: "booking_slot"
        case .bookingConfirm: "booking_confirm"
        case .stylesheet: "stylesheet"
        case .languageSwitch: "language_switch"
        case .reservationPage: "reservation_page"
        case .cancelPage: "cancel_page"
        case .cancelFromPage: "cancel_from_page"
        case .bookingWaitlist: "booking_waitlist"
        case .waitlistPage: "waitlist_page"
        case .leaveWaitlistFromPage: "leave_waitlist_from_page"
        case .reserve: "reserve"
        case .register: "register"
        case .getRegistration: "get_registration"
        case .getDrawReceipt: "get_draw_receipt"
        case .joinWaitlist: "join_waitlist"
        case .getWaitlistEntry: "get_waitlist_entry"
        case .leaveWaitlist: "leave_waitlist"
        case .getDraw: "get_draw"
        case .drawFile: "draw_file"
        case .commitDraw: "commit_draw"
        case .runDraw: "run_draw"
        case .opsHome: "ops_home"
        case .opsSignInPage: "ops_sign_in_page"
        case .opsSignIn: "ops_sign_in"
        case .opsSignOut: "ops_sign_out"
        case .opsAudit: "ops_audit"
        case .opsCampaign: "ops_campaign"
        case .opsChange: "ops_change"
        case .opsStatus: "ops_status"
        case .opsCapacity: "ops_capacity"
        case .opsRateLimits: "ops_rate_limits"
        case .getReservation: "get_reservation"
        case .cancelReservation: "cancel_reservation"
        case .confirmFromPage: "confirm_from_page"
        case .confirmReservation: "confirm_reservation"
        case .redeemReservation: "redeem_reservation"
        case .createCampaign: "create_campaign"
        case .patchCampaign: "patch_campaign"
        case .putSites: "put_sites"
        case .putSlots: "put_slots"
        case .patchSlot: "patch_slot"
        case .putRateLimits: "put_rate_limits"
        case .campaignStats: "campaign_stats"
        case .exportReservations: "export_reservations"
        case .auditTrail: "audit_trail"
        case .reservationEvents: "reservation_events"
        }
    }
}
