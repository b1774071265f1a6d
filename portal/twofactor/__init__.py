"""Two-factor sign-in with TOTP: enrolment, the code step after the password, recovery codes,
remembered devices and the policy that requires it of roles holding sensitive permissions."""
