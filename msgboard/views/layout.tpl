<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{{ title }} · pixie board</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/static/style.css">
  <script src="/static/board.js" defer></script>
</head>
<body>
  <header class="site-header">
    <div class="wrap">
      <a class="brand" href="/"><span class="brand-mark" aria-hidden="true">✉</span> pixie board</a>
      <span class="tagline">a tiny message board on pixie_web</span>
    </div>
  </header>
  <main class="wrap">
{{!base}}
  </main>
  <footer class="site-footer wrap">
    Built with pixie_web: templates, sessions, signed cookies and SQLite.
  </footer>
</body>
</html>
