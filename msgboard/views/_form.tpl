    <section class="card composer" aria-labelledby="composer-heading">
      <h1 id="composer-heading">Write a message</h1>
% if errors:
      <div class="errors" role="alert">
        <p>Your message was not posted:</p>
        <ul>
% for error in errors:
          <li>{{ error }}</li>
% end
        </ul>
      </div>
% end
      <form method="post" action="/posts" enctype="multipart/form-data" class="post-form">
        <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
% if edit_name:
        <label for="name">Your name <span class="hint">(optional, up to {{ max_name }} characters)</span></label>
        <input id="name" name="name" type="text" maxlength="{{ max_name }}" autocomplete="nickname" placeholder="Anonymous" value="{{ form.get('name') or user_name or '' }}">
% else:
        <p class="posting-as">Posting as <strong class="current-name">{{ user_name }}</strong> · <a href="/?change_name=1" class="change-name">change name</a></p>
% end
        <label for="message">Message</label>
        <textarea id="message" name="message" rows="4" required maxlength="{{ max_message }}" data-counter="message-count" placeholder="What's on your mind?">{{ form.get('message', '') }}</textarea>
        <span id="message-count" class="counter" aria-live="polite"></span>
        <label class="file-label" for="image">Image <span class="hint">(optional: PNG, JPEG, GIF or WebP, up to 2 MB)</span></label>
        <input id="image" name="image" type="file" accept="image/png,image/jpeg,image/gif,image/webp">
        <button type="submit">Post message</button>
      </form>
    </section>
