-- Which texts a notice went out with: the language used (the patient's, or bokmål when there is
-- no template in theirs) and, per channel, the template version ("default" or an override's).
ALTER TABLE notices ADD COLUMN template_lang TEXT;
ALTER TABLE notices ADD COLUMN templates_used TEXT;

-- An organisation's own texts, every version kept (a NULL source goes back to the default).
CREATE TABLE template_overrides (
    id              BLOB PRIMARY KEY,
    organisation_id BLOB NOT NULL REFERENCES organisations(id),
    template_key    TEXT NOT NULL,
    lang            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    source          TEXT,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    UNIQUE (organisation_id, template_key, lang, version)
);
