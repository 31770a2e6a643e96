% rebase("layout", title="Messages")
% if flash:
    <p class="flash" role="status">{{ flash }}</p>
% end
% include("_form", errors=errors, form=form, user_name=user_name, edit_name=edit_name, csrf_token=csrf_token, max_message=max_message, max_name=max_name)
    <section class="posts" aria-labelledby="posts-heading">
      <h2 id="posts-heading">{{ "Older messages" if before else "Latest messages" }}</h2>
% if not posts:
      <p class="empty">No messages yet. Be the first to write one!</p>
% end
% for post in posts:
% include("_post", post=post, is_new=post.id in new_ids, is_own=post.id in own_ids)
% end
% if older:
      <p class="pager"><a href="/?before={{ older }}">Older messages →</a></p>
% elif before:
      <p class="pager"><a href="/">← Back to the latest messages</a></p>
% end
    </section>
