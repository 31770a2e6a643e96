% rebase("layout", title="Too large")
    <section class="card">
      <h1>That upload is too large</h1>
      <p>Images can be at most {{ max_mb }} MB. <a href="/">Back to the board</a>.</p>
    </section>
