// Headless Chromium as every browser script here starts it (Debian's, or $CHROMIUM), with the
// flags that keep it off the network; playwright gives every launch a fresh temporary profile (our
// --user-data-dir).
import { chromium } from 'playwright-core';

export const launch = (extra = []) => chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', ...extra],
});
