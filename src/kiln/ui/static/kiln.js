// kiln dashboard: small progressive enhancements; every page works without them.
"use strict";
window.kiln = window.kiln || {};
