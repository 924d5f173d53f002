// Runs in <head>, before the first paint, so a dark-mode user never sees a white flash. The choice made with the
// toggle wins; otherwise the system's preference does.
'use strict';
(() => {
  let chosen = null;
  try { chosen = localStorage.getItem('lfm.theme'); } catch { /* storage off: follow the system */ }
  const dark = chosen ? chosen === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
})();
