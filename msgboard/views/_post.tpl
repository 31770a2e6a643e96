      <article class="card post{{ ' is-new' if is_new else '' }}" id="post-{{ post.id }}">
        <header class="post-meta">
          <span class="avatar" aria-hidden="true">{{ post.name[:1].upper() }}</span>
          <span class="author">{{ post.name }}</span>
% if is_own:
          <span class="badge badge-own">you</span>
% elif is_new:
          <span class="badge badge-new">new</span>
% end
          <time datetime="{{ post.created_iso }}">{{ post.created_text }}</time>
        </header>
        <p class="message">{{ post.message }}</p>
% if post.image:
        <a class="post-image" href="/uploads/{{ post.image }}"><img src="/uploads/{{ post.image }}" alt="Image posted by {{ post.name }}" loading="lazy"></a>
% end
      </article>
